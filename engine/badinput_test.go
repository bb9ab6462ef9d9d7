package engine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"streamd/netpoll"
)

// rawClient speaks WebSocket by hand so tests can break the rules.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

const upgradeReq = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func rawDial(t *testing.T, e *Engine) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	if _, err := nc.Write([]byte(upgradeReq)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	if op, p := c.readFrame(); op != netpoll.OpText || !bytes.Contains(p, []byte(`"welcome"`)) {
		t.Fatalf("want welcome, got op %d %q", op, p)
	}
	return c
}

// frame writes one frame; masked unless mask is false.
func (c *rawClient) frame(b0 byte, payload []byte, mask bool) {
	var hdr []byte
	b1 := byte(0)
	if mask {
		b1 = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = []byte{b0, b1 | byte(n)}
	case n <= 0xFFFF:
		hdr = []byte{b0, b1 | 126, byte(n >> 8), byte(n)}
	default:
		hdr = binary.BigEndian.AppendUint64([]byte{b0, b1 | 127}, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if mask {
		key := [4]byte{1, 2, 3, 4}
		hdr = append(hdr, key[:]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	_, _ = c.nc.Write(append(hdr, p...))
}

func (c *rawClient) readFrame() (op byte, payload []byte) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0xFF, nil // connection ended
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint64(l[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0xFF, nil
	}
	return h[0] & 0x0F, payload
}

// expectClose reads until a close frame and returns its code.
func (c *rawClient) expectClose() uint16 {
	c.t.Helper()
	for i := 0; i < 10; i++ {
		op, p := c.readFrame()
		if op == netpoll.OpClose {
			if len(p) < 2 {
				return 1005
			}
			return binary.BigEndian.Uint16(p)
		}
		if op == 0xFF {
			c.t.Fatal("connection ended without a close frame")
		}
	}
	c.t.Fatal("no close frame")
	return 0
}

func TestBadInput(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxMessageSize = 4096; c.MaxRoomName = 16; c.WriteBufferLimit = 64 << 10 })
	// Bystanders: in the room the whole time; each must get every message.
	watcher := dial(t, e, false)
	watcher.send(map[string]any{"type": "join", "room": "r"})
	watcher.expect("joined")
	var sent uint64
	checkBystander := func(t *testing.T) {
		t.Helper()
		watcher.send(map[string]any{"type": "publish", "room": "r", "data": "still here"})
		sent++
		if m := watcher.expect("message"); num(m["seq"]) != sent {
			t.Fatalf("bystander got %v, want seq %d", m, sent)
		}
	}

	envelopeErrors := []struct {
		name, code string
		op         byte
		payload    string
	}{
		{"malformed JSON", "bad_json", netpoll.OpText, `{"type":"publish","room":"r",`},
		{"trailing garbage", "bad_json", netpoll.OpText, `{"type":"ping"} x`},
		{"not an object", "bad_json", netpoll.OpText, `[1,2]`},
		{"msgpack garbage", "bad_msgpack", netpoll.OpBinary, "\xc1\xff\x00"},
		{"unknown type", "unknown_type", netpoll.OpText, `{"type":"teleport","id":9}`},
		{"missing type", "missing_type", netpoll.OpText, `{"room":"r"}`},
		{"missing room", "missing_room", netpoll.OpText, `{"type":"join","id":1}`},
		{"empty room", "missing_room", netpoll.OpText, `{"type":"publish","room":"","data":1}`},
		{"room over limit", "room_too_long", netpoll.OpText, `{"type":"join","room":"` + strings.Repeat("x", 17) + `"}`},
		{"room with control char", "invalid_room", netpoll.OpText, `{"type":"join","room":"a\u0001b"}`},
		{"room not a string", "bad_field", netpoll.OpText, `{"type":"join","room":5}`},
		{"leave without join", "not_joined", netpoll.OpText, `{"type":"leave","room":"nope","id":"x"}`},
		{"event without pipeline", "unknown_stream", netpoll.OpText, `{"type":"event","stream":"s","data":1}`},
	}
	for _, tc := range envelopeErrors {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, e)
			c.frame(0x80|tc.op, []byte(tc.payload), true)
			op, p := c.readFrame()
			var m map[string]any
			if tc.op == netpoll.OpBinary {
				if op != netpoll.OpBinary {
					t.Fatalf("want a binary answer, got op %d %q", op, p)
				}
				m = decodeMsgpackMap(t, p)
			} else if op != netpoll.OpText || json.Unmarshal(p, &m) != nil {
				t.Fatalf("want a JSON answer, got op %d %q", op, p)
			}
			if m["type"] != "error" || m["code"] != tc.code || m["message"] == "" {
				t.Fatalf("got %v, want error %s", m, tc.code)
			}
			// The connection lives on.
			c.frame(0x81, []byte(`{"type":"ping","id":1}`), true)
			if _, p := c.readFrame(); !bytes.Contains(p, []byte(`"pong"`)) {
				t.Fatalf("after the error: %q, want pong", p)
			}
			checkBystander(t)
		})
	}

	closes := []struct {
		name string
		code uint16
		send func(c *rawClient)
	}{
		{"oversized frame", netpoll.CloseTooBig, func(c *rawClient) { c.frame(0x81, bytes.Repeat([]byte("a"), 5000), true) }},
		{"oversized fragmented message", netpoll.CloseTooBig, func(c *rawClient) {
			c.frame(0x01, bytes.Repeat([]byte("a"), 3000), true)
			c.frame(0x80, bytes.Repeat([]byte("a"), 3000), true)
		}},
		{"unmasked frame", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x81, []byte(`{"type":"ping"}`), false) }},
		{"invalid UTF-8", netpoll.CloseInvalidPayload, func(c *rawClient) { c.frame(0x81, []byte("{\"type\":\"ping\",\"x\":\"\xff\xfe\"}"), true) }},
		{"invalid UTF-8 across fragments", netpoll.CloseInvalidPayload, func(c *rawClient) {
			c.frame(0x01, []byte("\"\xe2\x82"), true)
			c.frame(0x80, []byte("\xff\""), true)
		}},
		{"reserved opcode", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x83, []byte("x"), true) }},
		{"reserved control opcode", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x8B, nil, true) }},
		{"RSV1 without deflate", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0xC1, []byte("x"), true) }},
		{"continuation without start", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x80, []byte("x"), true) }},
		{"new message inside fragments", netpoll.CloseProtocolError, func(c *rawClient) {
			c.frame(0x01, []byte("{"), true)
			c.frame(0x81, []byte("{}"), true)
		}},
		{"fragmented control frame", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x09, nil, true) }},
		{"control frame over 125", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x89, make([]byte, 126), true) }},
		{"close with 1-byte payload", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x88, []byte{3}, true) }},
		{"close with invalid code", netpoll.CloseProtocolError, func(c *rawClient) { c.frame(0x88, []byte{0x03, 0xEC}, true) }}, // 1004
		{"normal close is echoed", netpoll.CloseNormal, func(c *rawClient) { c.frame(0x88, []byte{0x03, 0xE8, 'b', 'y', 'e'}, true) }},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, e)
			tc.send(c)
			if got := c.expectClose(); got != tc.code {
				t.Fatalf("close code %d, want %d", got, tc.code)
			}
			checkBystander(t)
		})
	}

	t.Run("fragments with a ping between them", func(t *testing.T) {
		c := rawDial(t, e)
		c.frame(0x01, []byte(`{"type":"ping",`), true)
		c.frame(0x89, []byte("hb"), true) // control frame between fragments
		c.frame(0x80, []byte(`"id":5}`), true)
		if op, p := c.readFrame(); op != netpoll.OpPong || string(p) != "hb" {
			t.Fatalf("want pong hb, got %d %q", op, p)
		}
		if _, p := c.readFrame(); !bytes.Contains(p, []byte(`"pong"`)) || !bytes.Contains(p, []byte(`"id":5`)) {
			t.Fatalf("reassembled message answered %q", p)
		}
		checkBystander(t)
	})

	handshakes := []struct {
		name, req, status string
	}{
		{"not a GET", "POST /ws HTTP/1.1\r\nHost: x\r\n\r\n", "405"},
		{"missing key", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "400"},
		{"wrong path", strings.Replace(upgradeReq, "/ws", "/nope", 1), "404"},
		{"bad version", strings.Replace(upgradeReq, "Version: 13", "Version: 8", 1), "426"},
		{"garbage", "\x16\x03\x01\x00\xa5hello\r\n\r\n", "40"},
	}
	for _, tc := range handshakes {
		t.Run("handshake "+tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", e.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_, _ = nc.Write([]byte(tc.req))
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, _ := io.ReadAll(nc)
			if !bytes.HasPrefix(resp, []byte("HTTP/1.1 "+tc.status)) {
				t.Fatalf("got %q, want status %s", resp, tc.status)
			}
			checkBystander(t)
		})
	}

	t.Run("client that never reads is dropped", func(t *testing.T) {
		d := websocket.Dialer{ReadBufferSize: 1024}
		ws, _, err := d.Dial("ws://"+e.Addr().String()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if tc, ok := ws.UnderlyingConn().(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		_ = ws.WriteJSON(map[string]any{"type": "join", "room": "r"})
		before := e.Stats().SlowConsumerDrops
		big := strings.Repeat("z", 3000)
		deadline := time.Now().Add(20 * time.Second)
		for e.Stats().SlowConsumerDrops == before {
			if time.Now().After(deadline) {
				t.Fatal("the client that never reads was not dropped")
			}
			watcher.send(map[string]any{"type": "publish", "room": "r", "data": big})
			sent++
			if m := watcher.expect("message"); num(m["seq"]) != sent {
				t.Fatalf("bystander got seq %v, want %d", m["seq"], sent)
			}
		}
		checkBystander(t)
	})
}

func TestHandshakeTimeoutAndPartial(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte(upgradeReq[:20])) // a head that never completes
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("want the server to close the stuck handshake, got %v", err)
	}
	if e.Stats().HandshakeFailures == 0 {
		t.Fatal("handshake timeout not counted")
	}
	// A head split at every byte still upgrades.
	nc2, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	for i := 0; i < len(upgradeReq); i++ {
		_, _ = nc2.Write([]byte{upgradeReq[i]})
	}
	br := bufio.NewReader(nc2)
	_ = nc2.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		t.Fatalf("byte-by-byte head: %q", line)
	}
}

func decodeMsgpackMap(t *testing.T, p []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := msgpackUnmarshal(p, &m); err != nil {
		t.Fatalf("bad msgpack answer %q: %v", p, err)
	}
	return m
}

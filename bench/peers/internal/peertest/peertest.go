// Package peertest holds the smoke test every reference server in
// bench/peers passes: two gorilla/websocket clients join one room, one
// publishes, both receive the message with its data byte for byte.
package peertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FreeAddr returns a loopback address with a port that was free a moment ago
// (for servers that cannot listen on port 0 and report the port back).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type frame struct {
	Type string          `json:"type"`
	Room string          `json:"room"`
	Seq  uint64          `json:"seq"`
	Data json.RawMessage `json:"data"`
}

type client struct {
	t    testing.TB
	conn *websocket.Conn
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			c := &client{t: t, conn: conn}
			c.expect("welcome", "", 0)
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() (frame, []byte) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, msg, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("frame type %d, want text", typ)
	}
	var f frame
	if err := json.Unmarshal(msg, &f); err != nil {
		c.t.Fatalf("%q: %v", msg, err)
	}
	return f, msg
}

func (c *client) expect(typ, room string, seq uint64) frame {
	c.t.Helper()
	f, raw := c.read()
	if f.Type != typ || f.Room != room || f.Seq != seq {
		c.t.Fatalf("got %s, want type %q room %q seq %d", raw, typ, room, seq)
	}
	return f
}

// rawHandshake opens a connection the way cmd/streamload does (bare request,
// no Origin, the RFC's sample key), sends a masked join frame and checks the
// 101 answer, the welcome and the joined frames.
func rawHandshake(t *testing.T, addr string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("upgrade answer %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	readFrame := func() string {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || h[1] >= 126 {
			t.Fatalf("frame header % x, want a short unmasked text frame", h)
		}
		p := make([]byte, h[1])
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	if got := readFrame(); got != `{"type":"welcome"}` {
		t.Fatalf("first frame %s, want the welcome", got)
	}
	join := []byte(`{"type":"join","room":"raw"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(join))}, mask[:]...)
	for i, b := range join {
		frame = append(frame, b^mask[i%4])
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(); got != `{"type":"joined","room":"raw","seq":0}` {
		t.Fatalf("got %s, want joined", got)
	}
}

// Smoke runs the protocol subset against the server at addr.
func Smoke(t *testing.T, addr string) {
	const room = "room.a"
	const data = `{"text":"hi \u00e9", "n":[1,2.50,null]}` // odd spacing: must come back verbatim
	a, b := dial(t, addr), dial(t, addr)
	rawHandshake(t, addr)
	a.send(`{"type":"join","room":"room.a"}`)
	a.expect("joined", room, 0)
	b.send(`{"type":"join","room":"room.a"}`)
	b.expect("joined", room, 0)

	a.send(`{"type":"publish","room":"room.a","data":` + data + `}`)
	for _, c := range []*client{a, b} {
		f := c.expect("message", room, 1)
		if !bytes.Equal(f.Data, []byte(data)) {
			t.Fatalf("data %s, want %s", f.Data, data)
		}
	}
	b.send(`{"type":"publish","room":"room.a","data":"two"}`)
	a.expect("message", room, 2)
	b.expect("message", room, 2)

	b.send(`{"type":"ping"}`)
	b.expect("pong", "", 0)

	late := dial(t, addr) // joins after two publishes: joined carries the room's seq
	late.send(`{"type":"join","room":"room.a"}`)
	late.expect("joined", room, 2)
	late.send(`{"type":"publish","room":"room.a","data":3}`)
	for _, c := range []*client{a, b, late} {
		if f := c.expect("message", room, 3); string(f.Data) != "3" {
			t.Fatalf("data %s, want 3", f.Data)
		}
	}
}

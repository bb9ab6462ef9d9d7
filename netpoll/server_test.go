package netpoll

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// echoHandler echoes each message back, in the opcode it came with.
type echoHandler struct{}

func (echoHandler) OnOpen(c *Conn)                             {}
func (echoHandler) OnMessage(c *Conn, op byte, payload []byte) { c.WriteMessage(op, payload) }
func (echoHandler) OnClose(c *Conn, err error)                 {}
func (echoHandler) OnWake(l *Loop)                             {}

func startEcho(t testing.TB, mutate func(*Options)) *Server {
	t.Helper()
	o := Options{Addr: "127.0.0.1:0", Loops: 2, HeartbeatInterval: time.Second}
	if mutate != nil {
		mutate(&o)
	}
	s, err := NewServer(o, echoHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func wsURL(s *Server) string { return "ws://" + s.Addr().String() + "/ws" }

func TestEchoGorilla(t *testing.T) {
	s := startEcho(t, nil)
	for _, compress := range []bool{false, true} {
		d := websocket.Dialer{EnableCompression: compress}
		c, resp, err := d.Dial(wsURL(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != compress {
			t.Fatalf("compress=%v: extension header present=%v", compress, got)
		}
		c.EnableWriteCompression(compress)
		msgs := []string{"hello", strings.Repeat("x", 200), strings.Repeat("abc", 50000), ""}
		for _, m := range msgs {
			for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
				if err := c.WriteMessage(mt, []byte(m)); err != nil {
					t.Fatal(err)
				}
				gotT, got, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if gotT != mt || string(got) != m {
					t.Fatalf("compress=%v: echo mismatch: type %d len %d, want type %d len %d", compress, gotT, len(got), mt, len(m))
				}
			}
		}
		c.Close()
	}
}

func TestEchoCoderContextTakeover(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("CompressionClientTakeover=%v", allow), func(t *testing.T) {
			testCoderTakeover(t, allow)
		})
	}
}

func testCoderTakeover(t *testing.T, allow bool) {
	s := startEcho(t, func(o *Options) { o.CompressionClientTakeover = allow })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, mode := range []cws.CompressionMode{cws.CompressionContextTakeover, cws.CompressionNoContextTakeover, cws.CompressionDisabled} {
		c, resp, err := cws.Dial(ctx, wsURL(s), &cws.DialOptions{CompressionMode: mode, CompressionThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		wantNoTakeover := mode == cws.CompressionNoContextTakeover || !allow
		if mode != cws.CompressionDisabled && strings.Contains(ext, "client_no_context_takeover") != wantNoTakeover {
			t.Fatalf("mode %v: extensions %q, want client_no_context_takeover=%v", mode, ext, wantNoTakeover)
		}
		c.SetReadLimit(1 << 20)
		for i := 0; i < 20; i++ {
			m := bytes.Repeat([]byte("context takeover repeats "), 10+i)
			if err := c.Write(ctx, cws.MessageText, m); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("mode %v msg %d: %v", mode, i, err)
			}
			if !bytes.Equal(got, m) {
				t.Fatalf("mode %v msg %d: mismatch", mode, i)
			}
		}
		c.Close(cws.StatusNormalClosure, "")
	}
}

// rawConn speaks raw bytes for protocol-violation tests.
func rawUpgrade(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	// split the handshake across writes
	for i := 0; i < len(req); i += 7 {
		_, _ = nc.Write([]byte(req[i:min(i+7, len(req))]))
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 4096)
	_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := nc.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101")) {
		t.Fatalf("upgrade failed: %q %v", buf[:n], err)
	}
	return nc
}

func TestSplitHandshakeAndUnmasked(t *testing.T) {
	s := startEcho(t, nil)
	nc := rawUpgrade(t, s)
	defer nc.Close()
	_, _ = nc.Write([]byte{0x81, 0x02, 'h', 'i'}) // unmasked text
	buf := make([]byte, 64)
	n, _ := nc.Read(buf)
	if n < 4 || buf[0] != 0x88 || int(buf[2])<<8|int(buf[3]) != int(CloseProtocolError) {
		t.Fatalf("want close 1002, got % x", buf[:n])
	}
}

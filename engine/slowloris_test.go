package engine

import (
	"net"
	"testing"
	"time"
)

// TestSlowlorisIsDisconnected: connections that trickle their upgrade
// request are closed at the handshake timeout, and a normal client is
// served meanwhile.
func TestSlowlorisIsDisconnected(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	const n = 40
	closed := make(chan time.Duration, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { // one byte every 50 ms: the request would take ~8 s
			for k := 0; k < len(req); k++ {
				if _, err := c.Write([]byte{req[k]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		go func() {
			buf := make([]byte, 512)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := c.Read(buf); err != nil {
					closed <- time.Since(start)
					return
				}
			}
		}()
	}
	// a well-behaved client is served while they trickle
	ok := dial(t, e, false)
	ok.send(map[string]any{"type": "ping"})
	ok.expect("pong")
	for i := 0; i < n; i++ {
		select {
		case d := <-closed:
			if d > 5*time.Second {
				t.Fatalf("a slow handshake lived %v (handshake_timeout 300ms)", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d slow handshakes still open after 10s", n-i, n)
		}
	}
	ok.send(map[string]any{"type": "ping"})
	ok.expect("pong")
	if st := e.Stats(); st.HandshakeFailures < n {
		t.Fatalf("handshake failures counted: %d, want %d", st.HandshakeFailures, n)
	}
}

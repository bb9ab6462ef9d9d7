package netpoll

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/internal/testcert"
)

// addrHandler echoes and records each connection's RemoteAddr and TLS().
type addrHandler struct {
	mu    sync.Mutex
	addrs []string
	tls   []bool
}

func (h *addrHandler) OnOpen(c *Conn) {
	h.mu.Lock()
	h.addrs = append(h.addrs, c.RemoteAddr().String())
	h.tls = append(h.tls, c.TLS())
	h.mu.Unlock()
}
func (h *addrHandler) OnMessage(c *Conn, op byte, payload []byte) { c.WriteMessage(op, payload) }
func (h *addrHandler) OnClose(c *Conn, err error)                 {}
func (h *addrHandler) OnWake(l *Loop)                             {}

// startTLS runs a server with a plain and a TLS listener and returns it
// with a client TLS config that trusts it. The caller shuts it down.
func startTLS(t *testing.T, h Handler, mutate func(*Options)) (*Server, *tls.Config) {
	t.Helper()
	pair := testcert.New(t, 1, false)
	cf, kf := pair.Write(t, t.TempDir())
	certs, err := LoadCertFiles(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Addr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", Loops: 2, HeartbeatInterval: time.Second,
		TLSConfig: NewTLSConfig(tls.VersionTLS12, certs.GetCertificate)}
	if mutate != nil {
		mutate(&o)
	}
	s, err := NewServer(o, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s, testcert.ClientConfig(pair)
}

func shutdown(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func dialWSS(t *testing.T, s *Server, cfg *tls.Config, compress bool) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: cfg, EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+s.TLSAddr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestTLSEchoSeesClientAddress: messages of every size (one TLS record and
// many) echo back over wss, with and without deflate, and the Handler sees
// the client's TCP address and TLS() true; plain clients see TLS() false.
func TestTLSEchoSeesClientAddress(t *testing.T) {
	h := &addrHandler{}
	s, cfg := startTLS(t, h, nil)
	defer shutdown(t, s)
	for _, compress := range []bool{false, true} {
		ws := dialWSS(t, s, cfg, compress)
		ws.EnableWriteCompression(compress)
		for _, m := range []string{"hi", strings.Repeat("x", 300), strings.Repeat("abc", 70000)} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, got, err := ws.ReadMessage()
			if err != nil || string(got) != m {
				t.Fatalf("compress=%v: echo of %d bytes: got %d bytes, %v", compress, len(m), len(got), err)
			}
		}
		local := ws.LocalAddr().String()
		ws.Close()
		h.mu.Lock()
		last, isTLS := h.addrs[len(h.addrs)-1], h.tls[len(h.tls)-1]
		h.mu.Unlock()
		if last != local || !isTLS {
			t.Fatalf("handler saw RemoteAddr %q TLS=%v; the client is %q over TLS", last, isTLS, local)
		}
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	waitUntil(t, "plain OnOpen", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.tls) == 3 })
	if h.tls[2] {
		t.Fatal("a plain connection reports TLS()")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTLSClosesLeakNothing: connections closed every way (close handshake
// from the client, abrupt client close, server close 1009, server
// shutdown with clients open) leave no pump goroutine, no TLS count and no
// per-IP slot behind.
func TestTLSClosesLeakNothing(t *testing.T) {
	waitUntil(t, "no TLS goroutine before the test", func() bool { return testcert.TLSGoroutines() == 0 })
	s, cfg := startTLS(t, echoHandler{}, func(o *Options) { o.MaxConnectionsPerIP = 100; o.MaxMessageSize = 1000 })
	var open []*websocket.Conn
	for i := 0; i < 12; i++ {
		ws := dialWSS(t, s, cfg, false)
		if err := ws.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0: // close handshake started by the client
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			_, _, err := ws.ReadMessage()
			if !websocket.IsCloseError(err, 1000) {
				t.Fatalf("client close: got %v, want the server's close 1000", err)
			}
			ws.Close()
		case 1: // abrupt
			ws.Close()
		case 2: // the server closes (message over MaxMessageSize)
			_ = ws.WriteMessage(websocket.TextMessage, make([]byte, 2000))
			_, _, err := ws.ReadMessage()
			if !websocket.IsCloseError(err, int(CloseTooBig)) {
				t.Fatalf("got %v, want close 1009 over TLS", err)
			}
			ws.Close()
		default: // left open for Shutdown
			open = append(open, ws)
		}
	}
	waitUntil(t, "closed TLS connections to go", func() bool { return s.Stats().TLSOpen.Load() == int64(len(open)) })
	s.perIPMu.Lock()
	slots := s.perIP["127.0.0.1"]
	s.perIPMu.Unlock()
	if slots != len(open) {
		t.Fatalf("per-IP slots held: %d, want %d (the open connections)", slots, len(open))
	}
	shutdown(t, s)
	for _, ws := range open {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, int(CloseGoingAway)) {
			t.Errorf("at shutdown a TLS client got %v, want close 1001", err)
		}
		ws.Close()
	}
	if n := s.Stats().TLSOpen.Load(); n != 0 {
		t.Fatalf("TLSOpen = %d after shutdown", n)
	}
	if _, err := net.DialTimeout("tcp", s.TLSAddr().String(), time.Second); err == nil {
		t.Fatal("the TLS listener still accepts after shutdown")
	}
	// Shutdown waited for every connection's done(); let them return.
	deadline := time.Now().Add(time.Second)
	for testcert.TLSGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d TLS goroutines 1s after Shutdown", testcert.TLSGoroutines())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTLSPerIPCountsTheClient: plain and TLS connections from one IP share
// MaxConnectionsPerIP; the TLS ones count under the client's IP (not the
// socketpair's), are refused before the handshake once the IP is full,
// and give their slot back when they close.
func TestTLSPerIPCountsTheClient(t *testing.T) {
	s, cfg := startTLS(t, echoHandler{}, func(o *Options) { o.MaxConnectionsPerIP = 3 })
	defer shutdown(t, s)
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		conns = append(conns, dialWSS(t, s, cfg, false))
	}
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 3 * time.Second}
	if ws, _, err := d.Dial("wss://"+s.TLSAddr().String()+"/ws", nil); err == nil {
		ws.Close()
		t.Fatal("a 4th TLS connection from one IP was accepted (max 3)")
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
	if err == nil {
		ws.Close()
		t.Fatal("a plain connection was accepted while TLS ones fill the IP's quota")
	}
	if resp == nil || resp.StatusCode != 429 {
		t.Fatalf("plain over quota: %v %v, want HTTP 429", resp, err)
	}
	conns[0].Close()
	waitUntil(t, "a slot to free", func() bool {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
		if err == nil {
			ws.Close()
		}
		return err == nil
	})
	for _, c := range conns[1:] {
		c.Close()
	}
}

// TestTLSClientThatNeverClosesIsLetGo: after the server closes (here for a
// message over MaxMessageSize), a client that neither answers the close
// frame nor closes its socket holds the pumps only until the close grace
// and the linger have passed.
func TestTLSClientThatNeverClosesIsLetGo(t *testing.T) {
	s, cfg := startTLS(t, echoHandler{}, func(o *Options) { o.MaxMessageSize = 200 })
	defer shutdown(t, s)
	tc, err := tls.Dial("tcp", s.TLSAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := tc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	big := append([]byte{0x81, 0x80 | 126, 0x01, 0x00, 0, 0, 0, 0}, make([]byte, 256)...) // 256 bytes, masked with a zero key
	if _, err := tc.Write(big); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, "the TLS connection to be let go", func() bool { return s.Stats().TLSOpen.Load() == 0 })
	if d := time.Since(start); d > closeGrace+tlsLinger+2*time.Second {
		t.Fatalf("let go after %v, want within close grace + linger (%v)", d, closeGrace+tlsLinger)
	}
	// The client's socket saw the close frame and then the end.
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := tc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.Contains(string(got), "101") || !strings.Contains(string(got), "\x88") {
		t.Fatalf("the client read %q, want the 101 and a close frame", got)
	}
}

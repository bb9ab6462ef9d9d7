package engine

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestRateLimitPerConnection(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxMessagesPerSecond = 10 })
	c := dial(t, e, false)
	for i := 0; i < 50; i++ {
		c.send(map[string]any{"type": "ping", "id": i})
	}
	frames := make(chan string, 100)
	go func() { // gorilla's reads cannot time out and go on: read in the background
		for {
			_, b, err := c.ws.ReadMessage()
			if err != nil {
				close(frames)
				return
			}
			frames <- string(b)
		}
	}()
	pongs, limited := 0, 0
	window := time.After(700 * time.Millisecond)
collect:
	for {
		select {
		case b := <-frames:
			switch {
			case strings.Contains(b, `"pong"`):
				pongs++
			case strings.Contains(b, `"rate_limited"`):
				limited++
			}
		case <-window:
			break collect
		}
	}
	// a burst of one second's worth (10), maybe one more refilled; one
	// rate_limited answer for the rest (at most one a second)
	if pongs < 10 || pongs > 12 || limited != 1 {
		t.Fatalf("pongs %d, rate_limited answers %d", pongs, limited)
	}
	time.Sleep(1100 * time.Millisecond) // refilled
	c.send(map[string]any{"type": "ping", "id": "later"})
	select {
	case b := <-frames:
		if !strings.Contains(b, `"pong"`) || !strings.Contains(b, `"later"`) {
			t.Fatalf("after the refill: %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong after the refill")
	}
	if snap := e.Stats(); snap.Errors < 38 {
		t.Fatalf("dropped messages counted as errors: %d", snap.Errors)
	}
	// another connection has its own bucket
	c2 := dial(t, e, false)
	c2.send(map[string]any{"type": "ping"})
	c2.expect("pong")
}

func TestByteRateLimit(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxBytesPerSecond = 1000 })
	c := dial(t, e, false)
	big := strings.Repeat("x", 600)
	c.send(map[string]any{"type": "ping", "id": big})
	c.expect("pong")
	c.send(map[string]any{"type": "ping", "id": big}) // 1,200+ bytes in a second
	if m := c.expect("error"); m["code"] != CodeRateLimited {
		t.Fatalf("%v", m)
	}
}

func TestConnectionsPerIPAndAllowedOrigins(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.MaxConnectionsPerIP = 2
		c.AllowedOrigins = []string{"https://*.example.com"}
	})
	url := "ws://" + e.Addr().String() + "/ws"
	a := dial(t, e, false)
	b := dial(t, e, false)
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("third connection from one IP: %v %v", resp, err)
	}
	a.ws.Close()
	time.Sleep(100 * time.Millisecond)
	c := dial(t, e, false) // a place came free
	_ = b
	_ = c
	h := http.Header{"Origin": {"https://evil.test"}}
	b.ws.Close()
	time.Sleep(100 * time.Millisecond)
	if _, resp, err := websocket.DefaultDialer.Dial(url, h); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a foreign origin: %v %v", resp, err)
	}
	h.Set("Origin", "https://app.example.com")
	ws, _, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatalf("an allowed origin: %v", err)
	}
	ws.Close()
}

// rate_limit_overflow: block: a burst past the limit is not dropped: the
// connection's reading pauses until its bucket refills, every message
// gets through in order, and another connection on the same loop is not
// held up.
func TestRateLimitBlock(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.Loops = 1
		c.MaxMessagesPerSecond = 50
		c.RateLimitOverflow = RateBlock
	})
	c := dial(t, e, false)
	other := dial(t, e, false)
	const n = 120 // 50 at once, 70 more at 50/s: about 1.4 s
	start := time.Now()
	for i := range n {
		c.send(map[string]any{"type": "ping", "id": i})
	}
	frames := make(chan map[string]any, n+10)
	go func() {
		for {
			var m map[string]any
			if err := c.ws.ReadJSON(&m); err != nil {
				close(frames)
				return
			}
			frames <- m
		}
	}()
	// while c waits for tokens, the other connection is answered at once
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	other.send(map[string]any{"type": "ping", "id": "other"})
	other.expect("pong")
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Errorf("the other connection waited %v for its pong while c was blocked", d)
	}
	if st := e.Stats(); st.RateBlocked == 0 {
		t.Errorf("rate_blocked %d while c waits", st.RateBlocked)
	}
	for i := range n {
		select {
		case m := <-frames:
			if m["type"] != "pong" || m["id"] != float64(i) {
				t.Fatalf("frame %d: %v (want the pong of %d, in order, nothing dropped)", i, m, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("pong %d of %d did not come", i, n)
		}
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("%d pings at 50/s after a burst of 50 took %v: the limit did not hold", n, d)
	}
	if st := e.Stats(); st.Errors != 0 || st.Received != n+1 {
		t.Errorf("errors %d, received %d: want 0 (block answers nothing rate_limited) and %d (a held message counted once)", st.Errors, st.Received, n+1)
	}
}

// A rate below one message a second still lets one through now and
// then (the bucket holds at least one message).
func TestRateLimitBelowOnePerSecond(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxMessagesPerSecond = 0.5 })
	c := dial(t, e, false)
	c.send(map[string]any{"type": "ping"})
	c.expect("pong")
	c.send(map[string]any{"type": "ping"})
	if m := c.expect("error"); m["code"] != CodeRateLimited {
		t.Fatalf("%v", m)
	}
}

func TestRateLimitOverflowValidation(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{RateLimitOverflow: "queue"}, "rate_limit_overflow"},
		{Config{RateLimitOverflow: RateBlock, MaxBytesPerSecond: 1000, MaxMessageSize: 4096}, "could never pass"},
	} {
		c := tc.c
		c.Listen = "127.0.0.1:0"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.c, err, tc.want)
		}
	}
}

// A producer that keeps sending while its message waits for tokens is
// closed with 1008 once its unread frames pass netpoll's paused-read limit
// (2 × max_message_size, at least 1 MiB), instead of being read and
// dropped for as long as it floods.
func TestRateLimitBlockClosesFlooder(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.MaxMessagesPerSecond = 10
		c.MaxMessageSize = 64 << 10
		c.RateLimitOverflow = RateBlock
	})
	c := dial(t, e, false)
	ping := []byte(`{"type":"ping","id":"` + strings.Repeat("x", 200) + `"}`)
	go func() {
		for range 20_000 { // ~4.6 MB: past the 1 MiB limit
			if c.ws.WriteMessage(websocket.TextMessage, ping) != nil {
				return
			}
		}
	}()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	pongs := 0
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("after %d pongs: %v, want close 1008", pongs, err)
			}
			break
		}
		if strings.Contains(string(b), `"rate_limited"`) {
			t.Fatalf("block answered rate_limited: %s", b)
		}
		pongs++
	}
	if pongs > 12 {
		t.Errorf("%d pongs before the close: more than the burst got through", pongs)
	}
}

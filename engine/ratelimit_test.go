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

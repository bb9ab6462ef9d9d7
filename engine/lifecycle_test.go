package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"streamd/netpoll"
)

// memberCounts returns, under the shard lock, the members per loop of room.
func memberCounts(e *Engine, name string) (total int32) {
	r, err := e.room(name)
	if err != nil {
		return -1
	}
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	for _, n := range r.loopCount {
		total += n
	}
	return total
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMembershipCleanedUpOnDisconnect(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, m)
		var cs []*client
		for i := 0; i < 50; i++ {
			c := dial(t, e, false)
			c.send(map[string]any{"type": "join", "room": "gone"})
			c.send(map[string]any{"type": "join", "room": "gone2"})
			c.expect("joined")
			c.expect("joined")
			cs = append(cs, c)
		}
		if n := memberCounts(e, "gone"); n != 50 {
			t.Fatalf("members = %d, want 50", n)
		}
		for i, c := range cs {
			if i%2 == 0 {
				c.ws.Close() // abrupt
			} else {
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			}
		}
		waitFor(t, "membership cleanup", func() bool {
			return memberCounts(e, "gone") == 0 && memberCounts(e, "gone2") == 0 && e.Stats().Connections == 0
		})
		// The views are empty too: a publish reaches nobody.
		before := e.Stats().Delivered
		if _, err := e.Publish("gone", []byte("1")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if d := e.Stats().Delivered - before; d != 0 {
			t.Fatalf("delivered %d after everyone left", d)
		}
	})
}

func TestHeartbeatPingsAndIdleClose(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.HeartbeatInterval = 100 * time.Millisecond; c.IdleTimeout = 400 * time.Millisecond })
	// A client that answers pings (gorilla does by default) stays.
	alive := dial(t, e, false)
	pings := make(chan struct{}, 16)
	alive.ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return alive.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := alive.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// A dead client: handshake, then silence (reads nothing, answers nothing).
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte(upgradeReq))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(nc) // returns when the server closes
	if i := bytes.LastIndex(got, []byte{0x88}); i < 0 || binary.BigEndian.Uint16(got[i+2:]) != netpoll.CloseGoingAway {
		t.Fatalf("dead client: want a ping then close 1001, got %q", got)
	}
	if !bytes.Contains(got, []byte{0x89, 0x00}) {
		t.Fatalf("dead client was never pinged: %q", got)
	}
	select {
	case <-pings:
	case <-time.After(2 * time.Second):
		t.Fatal("live client was never pinged")
	}
	// The dead client's socket lingers until its close grace ends; the live
	// one stays.
	waitFor(t, "the dead connection to go", func() bool { return e.Stats().Connections == 1 })
	if e.Stats().IdleTimeouts != 1 {
		t.Fatalf("stats %+v: want exactly 1 idle timeout", e.Stats())
	}
}

func TestGracefulShutdownSends1001(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}}
		m(&cfg)
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		c := dial(t, e, false)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- e.Close(ctx)
		}()
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = c.ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("want close 1001, got %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := net.DialTimeout("tcp", e.Addr().String(), time.Second); err == nil {
			t.Fatal("still accepting after Close")
		}
	})
}

func TestConnectionLimit(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxConnections = 2 })
	dial(t, e, false)
	dial(t, e, false)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+e.Addr().String()+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("third connection: err %v resp %v, want HTTP 503", err, resp)
	}
	if e.Stats().Rejected != 1 {
		t.Fatalf("rejected = %d", e.Stats().Rejected)
	}
}

func TestTooManyRoomsPerConn(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxRoomsPerConn = 2 })
	c := dial(t, e, false)
	for _, r := range []string{"a", "b"} {
		c.send(map[string]any{"type": "join", "room": r})
		c.expect("joined")
	}
	c.send(map[string]any{"type": "join", "room": "c", "id": 1})
	if m := c.expect("error"); m["code"] != CodeTooManyRooms {
		t.Fatalf("got %v", m)
	}
	c.send(map[string]any{"type": "join", "room": "a", "id": 2}) // re-join is fine
	c.expect("joined")
}

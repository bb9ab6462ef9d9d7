package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"
)

// startEngine runs an engine on a free loopback port for the test.
func startEngine(t testing.TB, mutate func(*Config)) *Engine {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, HeartbeatInterval: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

// client is a test client speaking JSON text frames.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func dial(t testing.TB, e *Engine, compress bool) *client {
	t.Helper()
	d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws://"+e.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t: t, ws: ws}
	if w := c.read(); w["type"] != "welcome" {
		t.Fatalf("first frame %v, want welcome", w)
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) sendRaw(mt int, b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(mt, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if mt == websocket.BinaryMessage {
		if err := msgpack.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("bad msgpack from server: %v", err)
		}
		return m
	}
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad JSON from server %q: %v", b, err)
	}
	return m
}

func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.read()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

func num(v any) uint64 {
	switch x := v.(type) {
	case float64:
		return uint64(x)
	case int8:
		return uint64(x)
	case uint8:
		return uint64(x)
	case int64:
		return uint64(x)
	case uint64:
		return x
	case int:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	}
	panic(fmt.Sprintf("not a number: %T %v", v, v))
}

func modes(t *testing.T, f func(t *testing.T, mutate func(*Config))) {
	for _, mode := range []string{ModeInline, ModeRings} {
		t.Run("mode="+mode, func(t *testing.T) {
			f(t, func(c *Config) { c.Mode = mode; c.Loops = 2; c.Workers = 2 })
		})
	}
}

func TestJoinPublishLeave(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, m)
		a, b := dial(t, e, false), dial(t, e, true)
		a.send(map[string]any{"type": "join", "room": "r1", "id": "j1"})
		j := a.expect("joined")
		if j["room"] != "r1" || j["id"] != "j1" || num(j["seq"]) != 0 {
			t.Fatalf("joined = %v", j)
		}
		b.send(map[string]any{"type": "join", "room": "r1"})
		b.expect("joined")
		b.send(map[string]any{"type": "publish", "room": "r1", "data": map[string]any{"x": 1.5, "s": "hé"}, "id": 7})
		ack := b.expect("ack")
		if num(ack["id"]) != 7 || num(ack["seq"]) != 1 {
			t.Fatalf("ack = %v", ack)
		}
		for _, c := range []*client{a} {
			msg := c.expect("message")
			d := msg["data"].(map[string]any)
			if msg["room"] != "r1" || num(msg["seq"]) != 1 || d["x"] != 1.5 || d["s"] != "hé" {
				t.Fatalf("message = %v", msg)
			}
		}
		b.expect("message") // the sender is a member too
		a.send(map[string]any{"type": "leave", "room": "r1", "id": 3})
		if l := a.expect("left"); l["room"] != "r1" || num(l["id"]) != 3 {
			t.Fatalf("left = %v", l)
		}
		b.send(map[string]any{"type": "publish", "room": "r1", "data": 2})
		b.expect("message")
		a.send(map[string]any{"type": "ping", "id": "p"})
		if p := a.expect("pong"); p["id"] != "p" {
			t.Fatalf("pong = %v", p) // and no message arrived before it: a left
		}
	})
}

func TestJoinSinceReplay(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) {
			m(c)
			c.Rooms = []RoomPolicy{{Match: "small.*", History: 3}}
		})
		for i := 1; i <= 5; i++ {
			if _, err := e.Publish("small.a", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Publish("big", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": "big", "since": 2})
		j := c.expect("joined")
		if j["recovered"] != true || num(j["seq"]) != 5 {
			t.Fatalf("joined = %v", j)
		}
		for want := uint64(3); want <= 5; want++ {
			if msg := c.expect("message"); num(msg["seq"]) != want || num(msg["data"]) != want {
				t.Fatalf("replay: %v, want seq %d", msg, want)
			}
		}
		c.send(map[string]any{"type": "join", "room": "small.a", "since": 1})
		if j := c.expect("joined"); j["recovered"] != false {
			t.Fatalf("joined = %v, want recovered:false (history 3 lost seq 2)", j)
		}
		for want := uint64(3); want <= 5; want++ {
			if msg := c.expect("message"); num(msg["seq"]) != want {
				t.Fatalf("replay: %v, want seq %d", msg, want)
			}
		}
		c.send(map[string]any{"type": "join", "room": "fresh", "since": 0})
		if j := c.expect("joined"); j["recovered"] != true {
			t.Fatalf("joined = %v", j)
		}
	})
}

func TestMsgpackAndMixedEncodings(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, m)
		j, p := dial(t, e, false), dial(t, e, true)
		j.send(map[string]any{"type": "join", "room": "mix"})
		j.expect("joined")
		b, _ := msgpack.Marshal(map[string]any{"type": "join", "room": "mix", "id": 1})
		p.sendRaw(websocket.BinaryMessage, b)
		if r := p.expect("joined"); num(r["id"]) != 1 {
			t.Fatalf("joined = %v", r)
		}
		b, _ = msgpack.Marshal(map[string]any{"type": "publish", "room": "mix", "data": map[string]any{"k": "v", "n": 3}})
		p.sendRaw(websocket.BinaryMessage, b)
		for _, c := range []*client{j, p} {
			msg := c.expect("message")
			d := msg["data"].(map[string]any)
			if d["k"] != "v" || num(d["n"]) != 3 {
				t.Fatalf("message = %v", msg)
			}
		}
		j.send(map[string]any{"type": "publish", "room": "mix", "data": []any{"a", true, nil}})
		for _, c := range []*client{j, p} {
			msg := c.expect("message")
			if d := msg["data"].([]any); len(d) != 3 || d[0] != "a" || d[1] != true || d[2] != nil {
				t.Fatalf("message = %v", msg)
			}
		}
	})
}

// TestThousandClientsOneRoom: every client receives every message, in seq order.
func TestThousandClientsOneRoom(t *testing.T) {
	const clients, msgs = 1000, 20
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, m)
		cs := make([]*client, clients)
		for i := range cs {
			cs[i] = dial(t, e, i%4 == 0)
			cs[i].send(map[string]any{"type": "join", "room": "big"})
		}
		for _, c := range cs {
			c.expect("joined")
		}
		errs := make(chan error, clients)
		for _, c := range cs {
			go func(c *client) {
				next := uint64(1)
				for next <= msgs {
					_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
					_, b, err := c.ws.ReadMessage()
					if err != nil {
						errs <- err
						return
					}
					var m map[string]any
					_ = json.Unmarshal(b, &m)
					if m["type"] != "message" {
						continue
					}
					if got := num(m["seq"]); got != next {
						errs <- fmt.Errorf("seq %d, want %d", got, next)
						return
					}
					next++
				}
				errs <- nil
			}(c)
		}
		pub := dial(t, e, false)
		for i := 0; i < msgs; i++ {
			pub.send(map[string]any{"type": "publish", "room": "big", "data": i})
		}
		for range cs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if d := e.Stats().Delivered; d < clients*msgs {
			t.Fatalf("delivered %d, want ≥ %d", d, clients*msgs)
		}
	})
}

func TestSubscribeAndPublishAPI(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, m)
		got := make(chan string, 10)
		cancel, err := e.Subscribe("api", func(m *Message) { got <- fmt.Sprintf("%d:%s", m.Seq(), m.Data()) })
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, e, false)
		c.send(map[string]any{"type": "publish", "room": "api", "data": "ws", "id": 1})
		c.expect("ack")
		if _, err := e.Publish("api", []byte(`{"a":1}`)); err != nil {
			t.Fatal(err)
		}
		if a, b := <-got, <-got; a != `1:"ws"` || b != `2:{"a":1}` {
			t.Fatalf("got %q %q", a, b)
		}
		cancel()
		if _, err := e.Publish("api", []byte(`not json`)); err == nil {
			t.Fatal("Publish accepted invalid JSON")
		}
		if _, err := e.Publish("", []byte(`1`)); err == nil {
			t.Fatal("Publish accepted an empty room")
		}
	})
}

func msgpackUnmarshal(b []byte, v any) error { return msgpack.Unmarshal(b, v) }

// TestAPIPublishFloodWhileClientsPublish: an embedding caller publishing
// faster than the loop drains must not deadlock with clients publishing.
func TestAPIPublishFloodWhileClientsPublish(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) { m(c); c.RingSize = 8 })
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": "flood"})
		c.expect("joined")
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 2000; i++ {
				if _, err := e.Publish("flood", []byte("1")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for i := 0; i < 200; i++ {
			c.send(map[string]any{"type": "publish", "room": "flood", "data": 2})
		}
		seen := 0
		for seen < 2200 {
			c.expect("message")
			seen++
		}
		<-done
	})
}

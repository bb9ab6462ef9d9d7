package engine

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// TestLeaveJoinBackToBack: a leave, a publish and a join in one read, while
// another member on the same loop keeps the room's deliveries flowing, must
// not let the client see a message between `left` and `joined` (the shard
// published it while the client was out, so the view must skip it too).
func TestLeaveJoinBackToBack(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) { m(c); c.Loops = 1 })
		keeper := dial(t, e, false) // keeps the room's count above zero on its loop
		keeper.send(map[string]any{"type": "join", "room": "busy"})
		keeper.expect("joined")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.Publish("busy", []byte("1")); err != nil {
					return
				}
				time.Sleep(20 * time.Microsecond)
			}
		}()
		defer func() { close(stop); wg.Wait() }()
		rc := rawDial(t, e)
		rc.frame(0x81, []byte(`{"type":"join","room":"busy"}`), true)
		for i := 0; i < 30; i++ {
			// leave, publish, join in one TCP write
			var b []byte
			b = append(b, frameBytes(0x81, []byte(`{"type":"leave","room":"busy"}`))...)
			b = append(b, frameBytes(0x81, []byte(`{"type":"publish","room":"busy","data":0}`))...)
			b = append(b, frameBytes(0x81, []byte(`{"type":"join","room":"busy"}`))...)
			_, _ = rc.nc.Write(b)
		}
		state := "out"
		lefts := 0
		for lefts < 30 {
			_, p := rc.readFrame()
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("bad frame %q", p)
			}
			switch m["type"] {
			case "joined":
				state = "in"
			case "left":
				state = "out"
				lefts++
			case "message":
				if state != "in" {
					t.Fatalf("got a message while not joined (after %d leaves)", lefts)
				}
			}
		}
	})
}

// frameBytes builds a masked client frame (zero mask key).
func frameBytes(b0 byte, p []byte) []byte {
	out := []byte{b0, 0x80 | byte(len(p)), 0, 0, 0, 0}
	return append(out, p...)
}

// TestCloseUnderLoadWithTinyRings: Close must return even when shards are
// blocked on full rings to loops that are stopping.
func TestCloseUnderLoadWithTinyRings(t *testing.T) {
	for i := 0; i < 5; i++ {
		cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Mode: ModeRings, Loops: 1, Workers: 1, RingSize: 2}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": "x"})
		c.expect("joined")
		go func() {
			for j := 0; j < 200; j++ {
				c.send(map[string]any{"type": "publish", "room": "x", "data": j})
			}
		}()
		pubDone := make(chan struct{})
		go func() {
			defer close(pubDone)
			for {
				if _, err := e.Publish("x", []byte("2")); err != nil {
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no grace at all
		done := make(chan struct{})
		go func() { _ = e.Close(ctx); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("Close hung")
		}
		<-pubDone
	}
}

func TestSinceBeyondLastIsNotRecovered(t *testing.T) {
	e := startEngine(t, nil)
	if _, err := e.Publish("r", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c := dial(t, e, false)
	c.send(map[string]any{"type": "join", "room": "r", "since": 500})
	if j := c.expect("joined"); j["recovered"] != false || num(j["seq"]) != 1 {
		t.Fatalf("joined = %v, want recovered:false seq 1", j)
	}
	c.send(map[string]any{"type": "join", "room": "r", "since": 1})
	if j := c.expect("joined"); j["recovered"] != true {
		t.Fatalf("joined = %v, want recovered:true", j)
	}
}

func TestLeaveAndAckDoNotCreateRooms(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.MaxRooms = 5 })
	c := dial(t, e, false)
	for i := 0; i < 20; i++ {
		c.send(map[string]any{"type": "ack", "room": "junk" + string(rune('a'+i)), "seq": 1})
		if m := c.expect("error"); m["code"] != CodeNotJoined {
			t.Fatalf("ack: %v", m)
		}
		c.send(map[string]any{"type": "leave", "room": "junk" + string(rune('a'+i))})
		if m := c.expect("error"); m["code"] != CodeNotJoined {
			t.Fatalf("leave: %v", m)
		}
	}
	if n := e.Stats().Rooms; n != 0 {
		t.Fatalf("%d rooms exist after leaves and acks only", n)
	}
	c.send(map[string]any{"type": "join", "room": "real"})
	c.expect("joined")
}

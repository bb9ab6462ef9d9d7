package engine

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialSlow opens a connection with a tiny receive buffer that does not
// read until told to: its unread bytes pile up on the server at once.
func dialSlow(t *testing.T, e *Engine, query string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return err
		}}
		return nd.Dial(network, addr)
	}}
	u := "ws://" + e.Addr().String() + "/ws"
	if query != "" {
		u += "?" + query
	}
	ws, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// account reads ws until every seq of 1..n is delivered or inside a gap
// notice: no seq twice, seqs increasing, each gap before the seqs above
// it. It returns the delivered messages' data by seq and the gaps.
func account(t *testing.T, ws *websocket.Conn, room string, n uint64, progress ...*atomic.Uint64) (map[uint64]string, [][2]uint64) {
	t.Helper()
	got := map[uint64]string{}
	var gaps [][2]uint64
	covered := uint64(0) // highest seq delivered or in a gap
	count := uint64(0)
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for count < n {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d seqs (covered to %d): %v", count, n, covered, err)
		}
		var m struct {
			Type     string
			Room     string
			Seq      uint64
			From, To uint64
			Data     json.RawMessage
		}
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "message":
			if m.Room != room {
				continue
			}
			if m.Seq <= covered {
				t.Fatalf("seq %d after %d was covered: %s", m.Seq, covered, b)
			}
			if m.Seq != covered+1 {
				t.Fatalf("seq %d came after %d with no gap notice for %d..%d", m.Seq, covered, covered+1, m.Seq-1)
			}
			covered = m.Seq
			got[m.Seq] = string(m.Data)
			count++
			for _, p := range progress {
				p.Store(covered)
			}
		case "gap":
			if m.Room != room || m.From != covered+1 || m.To < m.From {
				t.Fatalf("gap %s after seq %d", b, covered)
			}
			gaps = append(gaps, [2]uint64{m.From, m.To})
			count += m.To - m.From + 1
			covered = m.To
		}
	}
	return got, gaps
}

// TestBackpressurePolicies: a member that does not read lags; per its
// room's policy it gets a bounded queue (drop-newest, drop-oldest,
// keep-latest, sample) and gap notices for what it did not get, so that
// every seq is delivered once or announced, in order; a member that reads
// gets everything; the drops are counted.
func TestBackpressurePolicies(t *testing.T) {
	const n = 2000
	pad := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		policy string
		extra  func(*RoomPolicy)
		check  func(t *testing.T, got map[uint64]string, gaps [][2]uint64)
	}{
		{policy: BPDropNewest, check: func(t *testing.T, got map[uint64]string, gaps [][2]uint64) {
			if len(gaps) == 0 || gaps[len(gaps)-1][1] != n {
				t.Errorf("drop-newest: the newest should be dropped: gaps %v", gaps)
			}
		}},
		{policy: BPDropOldest, check: func(t *testing.T, got map[uint64]string, gaps [][2]uint64) {
			if _, ok := got[n]; !ok || len(gaps) == 0 {
				t.Errorf("drop-oldest: the newest should be kept and some dropped: gaps %v", gaps)
			}
		}},
		{policy: BPKeepLatest, extra: func(p *RoomPolicy) { p.ConflateKey = "k" }, check: func(t *testing.T, got map[uint64]string, gaps [][2]uint64) {
			for k := n - 4; k <= n; k++ { // the last message of each of the 5 keys
				if _, ok := got[uint64(k)]; !ok {
					t.Errorf("keep-latest: the latest of key %d (seq %d) was not delivered", k%5, k)
				}
			}
			if len(gaps) == 0 {
				t.Error("keep-latest: nothing was conflated")
			}
		}},
		{policy: BPSample, extra: func(p *RoomPolicy) { p.SampleEvery = 4 }, check: func(t *testing.T, got map[uint64]string, gaps [][2]uint64) {
			if len(gaps) == 0 {
				t.Error("sample: nothing was dropped")
			}
		}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e := startEngine(t, func(c *Config) {
				p := RoomPolicy{Match: "bp.*", Backpressure: tc.policy, MaxPending: 50, LagBytes: 16 << 10}
				if tc.extra != nil {
					tc.extra(&p)
				}
				c.Rooms = []RoomPolicy{p}
				c.SocketSendBuffer = 16 << 10
			})
			slow := dialSlow(t, e, "")
			fast := dial(t, e, false)
			for _, ws := range []*websocket.Conn{slow, fast.ws} {
				_ = ws.WriteJSON(map[string]any{"type": "join", "room": "bp.r"})
			}
			fast.expect("joined")
			time.Sleep(50 * time.Millisecond) // the slow one's join too
			done := make(chan struct{})
			var fastAt atomic.Uint64
			go func() { // the fast member reads everything, no gap
				defer close(done)
				got, gaps := account(t, fast.ws, "bp.r", n, &fastAt)
				if len(got) != n || len(gaps) != 0 {
					t.Errorf("the fast member got %d messages and gaps %v", len(got), gaps)
				}
			}()
			for i := 1; i <= n; i++ {
				// paced by the reading member (it keeps up: at most 8 KB
				// ahead of it); the other does not read at all
				for uint64(i) > fastAt.Load()+8 {
					time.Sleep(100 * time.Microsecond)
				}
				if _, err := e.Publish("bp.r", fmt.Appendf(nil, `{"k":%d,"pad":%q}`, i%5, pad)); err != nil {
					t.Fatal(err)
				}
			}
			<-done
			// The slow member reads now: everything is accounted for.
			_, _, _ = slow.ReadMessage() // welcome
			got, gaps := account(t, slow, "bp.r", n)
			dropped := uint64(0)
			for _, g := range gaps {
				dropped += g[1] - g[0] + 1
			}
			if uint64(len(got))+dropped != n {
				t.Fatalf("delivered %d + in gaps %d != %d", len(got), dropped, n)
			}
			st := e.Stats()
			if st.BackpressureDropped != dropped || st.GapNotices != uint64(len(gaps)) {
				t.Errorf("stats: dropped %d gap notices %d; the member saw %d dropped in %d gaps", st.BackpressureDropped, st.GapNotices, dropped, len(gaps))
			}
			tc.check(t, got, gaps)
			t.Logf("%s: the slow member got %d messages and %d gap notices covering %d", tc.policy, len(got), len(gaps), dropped)
		})
	}
}

// TestBackpressureDisconnect: the disconnect policy closes a lagging
// member with 4008 at lag_bytes, long before write_buffer_limit, and the
// others are served.
func TestBackpressureDisconnect(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.Rooms = []RoomPolicy{{Match: "bp.*", Backpressure: BPDisconnect, LagBytes: 16 << 10}}
		c.SocketSendBuffer = 16 << 10
	})
	slow := dialSlow(t, e, "")
	fast := dial(t, e, false)
	_ = slow.WriteJSON(map[string]any{"type": "join", "room": "bp.r"})
	fast.send(map[string]any{"type": "join", "room": "bp.r"})
	fast.expect("joined")
	time.Sleep(50 * time.Millisecond)
	pad := strings.Repeat("x", 1000)
	var fastAt atomic.Uint64
	go func() {
		for i := 1; i <= 500; i++ {
			for uint64(i) > fastAt.Load()+8 { // paced by the reading member
				time.Sleep(100 * time.Microsecond)
			}
			_, _ = e.Publish("bp.r", fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad))
		}
	}()
	got, _ := account(t, fast.ws, "bp.r", 500, &fastAt)
	if len(got) != 500 {
		t.Fatalf("the fast member got %d", len(got))
	}
	waitFor(t, "the disconnect", func() bool { return e.Stats().BackpressureDisconnects == 1 })
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := slow.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != CloseSlowConsumer {
			t.Fatalf("the slow member ended with %v, want close %d", err, CloseSlowConsumer)
		}
		break
	}
}

// TestBackpressurePerConnection: ?backpressure= on the upgrade URL gives
// a connection its own policy in a room that has none; a bad value is
// refused.
func TestBackpressurePerConnection(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.SocketSendBuffer = 16 << 10 })
	slow := dialSlow(t, e, "backpressure=drop-oldest")
	_ = slow.WriteJSON(map[string]any{"type": "join", "room": "any"})
	time.Sleep(50 * time.Millisecond)
	pad := strings.Repeat("x", 1000)
	const n = 3000 // > max_pending (1000) beyond the lag
	for i := 1; i <= n; i++ {
		if _, err := e.Publish("any", fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = slow.ReadMessage() // welcome
	got, gaps := account(t, slow, "any", n)
	if _, ok := got[n]; !ok || len(gaps) == 0 {
		t.Fatalf("drop-oldest per connection: got %d, gaps %v", len(got), gaps)
	}
	bad := dialRaw(t, e, "backpressure=keep-latest", nil)
	if m := bad.read(); m["type"] != "error" || !strings.Contains(fmt.Sprint(m["message"]), "backpressure") {
		t.Fatalf("a bad policy: %v", m)
	}
}

// TestPipelineInputOverflowDropNewest: with input overflow drop-newest, a
// full pipeline queue drops the event and answers `overloaded` (counted),
// instead of stalling the connection's loop; the events it took are all
// processed.
func TestPipelineInputOverflowDropNewest(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.RingSize = 64
		c.PipelineWorkers = 1
		c.Pipelines = specs(t, `
- name: p
  input: {stream: s, overflow: drop-newest}
  nodes:
    - {name: pass, op: filter, if: "true"}
  output: {room: out}
`)
	})
	e.pipesMu.Lock()
	rt := e.pipes["p"]
	e.pipesMu.Unlock()
	release := make(chan struct{})
	go rt.exec.do(func() { <-release }) // the executor is busy: its queue fills
	time.Sleep(20 * time.Millisecond)
	var delivered atomic.Int64
	stop, _ := e.Subscribe("out", func(*Message) { delivered.Add(1) })
	defer stop()
	c := dial(t, e, false)
	const n = 200
	for i := range n {
		c.send(map[string]any{"type": "event", "stream": "s", "id": i, "data": i})
	}
	overloaded := 0
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for overloaded < n-64 {
		m := c.read()
		if m["type"] != "error" || m["code"] != CodeOverloaded {
			t.Fatalf("got %v", m)
		}
		overloaded++
	}
	close(release)
	waitFor(t, "the queued events", func() bool { return delivered.Load() == int64(n-overloaded) })
	if got := rt.overflowed.Load(); got != uint64(overloaded) {
		t.Fatalf("overflowed %d, answered %d", got, overloaded)
	}
	t.Logf("%d events: %d processed, %d answered overloaded", n, delivered.Load(), overloaded)
}

// TestPipelineInputBlockPausesOnlyTheProducer: with input overflow block
// (the default), a producer whose pipeline queue is full waits — its
// frames are read no further, and with flow_control it is told to pause —
// while another connection on the same loop is still served; once the
// pipeline has room every event goes in, in order, none lost.
func TestPipelineInputBlockPausesOnlyTheProducer(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.Loops = 1
		c.RingSize = 64
		c.PipelineWorkers = 1
		c.FlowControl = true
		c.Pipelines = specs(t, `
- name: p
  input: {stream: s}
  nodes:
    - {name: pass, op: filter, if: "true"}
  output: {room: out}
`)
	})
	e.pipesMu.Lock()
	rt := e.pipes["p"]
	e.pipesMu.Unlock()
	release := make(chan struct{})
	go rt.exec.do(func() { <-release }) // the pipeline is stuck: its queue fills
	time.Sleep(20 * time.Millisecond)
	var got []int
	var mu sync.Mutex
	stop, _ := e.Subscribe("out", func(m *Message) {
		var n int
		_ = json.Unmarshal(m.Data(), &n)
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	})
	defer stop()
	prod := dial(t, e, false)
	const n = 300
	for i := range n {
		prod.send(map[string]any{"type": "event", "stream": "s", "data": i})
	}
	if m := prod.expect("flow"); m["state"] != "pause" {
		t.Fatalf("flow %v", m)
	}
	// The loop is not blocked: another client is served meanwhile.
	other := dial(t, e, false)
	other.send(map[string]any{"type": "ping", "id": 1})
	other.expect("pong")
	if st := e.Stats(); st.HeldEvents != 1 {
		t.Fatalf("held events %d", st.HeldEvents)
	}
	close(release)
	if m := prod.expect("flow"); m["state"] != "resume" {
		t.Fatalf("flow %v", m)
	}
	waitFor(t, "every event", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n })
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d came as %d-th", v, i)
		}
	}
}

// A stream read by a blocking pipeline and, after it, a drop-newest one:
// when the held event gets into the blocking pipeline at last and the
// drop-newest one is full, that one drops it (answered overloaded), as it
// does for an event that never waited; the producer is not held for it.
func TestHeldEventMeetsDropNewestAfterIt(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.Loops = 1
		c.RingSize = 64
		c.PipelineWorkers = 8 // a and b on executors of their own
		c.Pipelines = specs(t, `
- name: a
  input: {stream: s}
  nodes:
    - {name: pass, op: filter, if: "true"}
  output: {room: out}
- name: b
  input: {stream: s, overflow: drop-newest}
  nodes:
    - {name: pass, op: filter, if: "true"}
  output: {room: out.b}
`)
	})
	e.pipesMu.Lock()
	a, b := e.pipes["a"], e.pipes["b"]
	e.pipesMu.Unlock()
	if a.exec == b.exec {
		t.Fatal("a and b share an executor: stalling b would stall a (rename them)")
	}
	releaseA, releaseB := make(chan struct{}), make(chan struct{})
	defer close(releaseB)
	go a.exec.do(func() { <-releaseA }) // both stuck: their queues fill
	go b.exec.do(func() { <-releaseB })
	time.Sleep(20 * time.Millisecond)
	var got atomic.Int64
	stop, _ := e.Subscribe("out", func(*Message) { got.Add(1) })
	defer stop()
	prod := dial(t, e, false)
	const n = 200
	for i := range n {
		prod.send(map[string]any{"type": "event", "stream": "s", "id": i, "data": i})
	}
	waitFor(t, "a held event", func() bool { return e.Stats().HeldEvents >= 1 })
	close(releaseA) // a drains; b stays stuck and full
	// The held event and every later one reach a: b's full queue drops
	// them (answered overloaded) instead of holding the producer for b.
	waitFor(t, "every event through a while b is stuck", func() bool { return got.Load() == n })
	if d := b.overflowed.Load(); d < n-64 {
		t.Fatalf("b dropped %d of the %d events past its queue", d, n)
	}
	if m := prod.expect("error"); m["code"] != "overloaded" {
		t.Fatalf("%v", m)
	}
}

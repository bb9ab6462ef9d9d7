package client

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// proxy forwards TCP between the client and the engine; tests cut or
// freeze its connections and make it refuse new ones.
type proxy struct {
	ln     net.Listener
	target string
	refuse atomic.Int32 // accept-then-close this many connections
	mu     sync.Mutex
	conns  []*pconn
}

type pconn struct {
	a, b   net.Conn
	frozen atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			if p.refuse.Load() > 0 {
				p.refuse.Add(-1)
				a.Close()
				continue
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			pc := &pconn{a: a, b: b}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			go pc.pipe(a, b)
			go pc.pipe(b, a)
		}
	}()
	return p
}

func (pc *pconn) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		if pc.frozen.Load() {
			continue // swallow: the TCP connection stays open and silent
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws" }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.a.Close()
		c.b.Close()
	}
	p.conns = nil
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.frozen.Store(true)
	}
}

func quietOpts() Options {
	return Options{Logger: slogDiscard()}
}

func collect() (func(Message), func() []Message) {
	var mu sync.Mutex
	var got []Message
	return func(m Message) { mu.Lock(); got = append(got, m); mu.Unlock() },
		func() []Message { mu.Lock(); defer mu.Unlock(); return append([]Message(nil), got...) }
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

func TestJoinPublishReceive(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	c, err := Dial(ctx, enginetest.URL(e), quietOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, got := collect()
	if err := c.Join(ctx, "r", h); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		seq, err := c.Publish(ctx, "r", map[string]int{"n": i})
		if err != nil || seq != uint64(i) {
			t.Fatalf("publish %d: seq %d err %v", i, seq, err)
		}
	}
	waitFor(t, "3 messages", func() bool { return len(got()) == 3 })
	if m := got()[2]; m.Seq != 3 || string(m.Data) != `{"n":3}` {
		t.Fatalf("got %+v", m)
	}
	if _, err := c.Event(ctx, "nope", 1); err == nil || !strings.Contains(err.Error(), "unknown_stream") {
		t.Fatalf("event on unknown stream: %v", err)
	}
}

// TestReconnect cuts the connection mid-stream and keeps the proxy
// refusing three attempts: the client waits on the backoff schedule,
// re-joins with since, receives every message published meanwhile once
// and in order, and sends its offline-queued publishes once, in order.
func TestReconnect(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Rooms: []engine.RoomPolicy{{Match: "d.*", Durable: true}}})
	p := newProxy(t, e.Addr().String())
	ctx := context.Background()

	var mu sync.Mutex
	var sleeps []time.Duration
	gate := make(chan struct{})
	opts := quietOpts()
	opts.Producer = "test-producer"
	opts.Rand = func() float64 { return 0.75 } // jitter factor 1 + 0.2×0.5 = 1.1
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		first := len(sleeps) == 1
		mu.Unlock()
		if first {
			select { // hold the client offline while the test publishes
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	states := make(chan State, 16)
	opts.OnState = func(s State, _ error) { states <- s }
	c, err := Dial(ctx, p.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, got := collect()
	if err := c.Join(ctx, "d.orders", h); err != nil {
		t.Fatal(err)
	}
	other, err := Dial(ctx, enginetest.URL(e), quietOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pub := func(n int) {
		if _, err := other.Publish(ctx, "d.orders", n); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		pub(i)
	}
	waitFor(t, "3 messages", func() bool { return len(got()) == 3 })

	p.cut()
	if s := <-states; s != Connected {
		t.Fatalf("state %v", s)
	}
	if s := <-states; s != Reconnecting {
		t.Fatalf("state %v", s)
	}
	for i := 4; i <= 6; i++ {
		pub(i)
	}
	// Offline publishes, queued in order.
	var wg sync.WaitGroup
	seqs := make([]uint64, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.Publish(ctx, "d.orders", 100+i)
			if err != nil {
				t.Error(err)
			}
			seqs[i] = s
		}()
		waitFor(t, "queued", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queue) == i+1 })
	}
	p.refuse.Store(3)
	close(gate)
	wg.Wait()
	if seqs[0] != 7 || seqs[1] != 8 || seqs[2] != 9 {
		t.Fatalf("offline publish seqs %v, want [7 8 9]", seqs)
	}
	pub(10)
	waitFor(t, "10 messages", func() bool { return len(got()) >= 10 })
	time.Sleep(50 * time.Millisecond)
	want := []string{"1", "2", "3", "4", "5", "6", "100", "101", "102", "10"}
	ms := got()
	if len(ms) != len(want) {
		t.Fatalf("got %d messages, want %d", len(ms), len(want))
	}
	for i, m := range ms {
		if m.Seq != uint64(i+1) || string(m.Data) != want[i] {
			t.Fatalf("message %d: seq %d data %s, want seq %d data %s", i, m.Seq, m.Data, i+1, want[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	wantSleeps := []time.Duration{110 * time.Millisecond, 220 * time.Millisecond, 440 * time.Millisecond, 880 * time.Millisecond}
	if len(sleeps) != len(wantSleeps) {
		t.Fatalf("sleeps %v, want %v", sleeps, wantSleeps)
	}
	for i := range sleeps {
		if sleeps[i] != wantSleeps[i] {
			t.Fatalf("sleeps %v, want %v", sleeps, wantSleeps)
		}
	}
}

// TestResendDuplicate: a producer publish whose ack was lost is resent
// after the reconnect and counts as delivered with the original seq.
func TestResendDuplicate(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Rooms: []engine.RoomPolicy{{Match: "d.*", Durable: true}}})
	ctx := context.Background()
	opts := quietOpts()
	opts.Producer = "p1"
	opts.Sleep = func(context.Context, time.Duration) error { return nil }
	c, err := Dial(ctx, enginetest.URL(e), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, got := collect()
	if err := c.Join(ctx, "d.x", h); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "d.x", 1); err != nil {
		t.Fatal(err)
	}
	// Simulate a lost ack: put an already-applied publish back in flight.
	c.mu.Lock()
	req := &request{out: outFrame{Type: "publish", Room: "d.x", Producer: "p1", PSeq: 1, Data: json.RawMessage("1"), ID: 999}, done: make(chan reply, 1)}
	c.pending[999] = req
	conn := c.conn
	c.mu.Unlock()
	conn.CloseNow()
	r := <-req.done
	if r.err != nil || r.f.Seq != 1 || !r.f.Duplicate {
		t.Fatalf("resend: %+v", r)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(got()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// TestDeadConnection: a proxy that silently stops forwarding is detected
// within two heartbeat intervals.
func TestDeadConnection(t *testing.T) {
	const hb = 300 * time.Millisecond
	e := enginetest.Start(t, engine.Config{HeartbeatInterval: hb})
	p := newProxy(t, e.Addr().String())
	opts := quietOpts()
	lost := make(chan time.Time, 4)
	opts.OnState = func(s State, _ error) {
		if s == Reconnecting {
			lost <- time.Now()
		}
	}
	c, err := Dial(context.Background(), p.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(hb / 2)
	start := time.Now()
	p.freeze()
	select {
	case at := <-lost:
		if d := at.Sub(start); d > 2*hb+hb/4 {
			t.Fatalf("dead connection detected after %v, want ≤ 2×%v (+slack)", d, hb)
		} else {
			t.Logf("detected after %v (heartbeat %v)", d, hb)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dead connection not detected")
	}
	waitFor(t, "reconnect", func() bool { return c.State() == Connected })
}

// TestConnectOnceAtATime: a Connect while another is dialling fails at
// once instead of dialling too; a Connect whose dial failed can be called
// again.
func TestConnectOnceAtATime(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	p := newProxy(t, e.Addr().String())
	// A listener that accepts and never answers: the first dial hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := quietOpts()
	cfg.URL = "ws://" + ln.Addr().String() + "/ws"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- c.Connect(ctx) }()
	time.Sleep(100 * time.Millisecond) // the first is dialling
	start := time.Now()
	if err := c.Connect(ctx); err == nil || !strings.Contains(err.Error(), "twice") || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("a second Connect while the first dials: %v after %v, want \"called twice\" at once", err, time.Since(start))
	}
	if err := <-first; err == nil {
		t.Fatal("the dial to a silent listener succeeded")
	}
	// The dial failed: Connect again, to the engine this time, works.
	c.url = p.url()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatalf("retry after a failed dial: %v", err)
	}
}

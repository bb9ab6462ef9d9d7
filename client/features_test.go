package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"streamd/engine"
	"streamd/engine/enginetest"
	"streamd/pipeline"
)

func mustSpecs(t testing.TB, src string) []pipeline.Spec {
	t.Helper()
	s, err := pipeline.ParseYAML([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMsgpackCompressionAndTypedHandlers: in msgpack mode with
// permessage-deflate, joins, publishes, events and results work, Data
// is JSON, and OnMessage handlers get room messages and results by their
// data's type; the lifecycle handlers fire.
func TestMsgpackCompressionAndTypedHandlers(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Pipelines: mustSpecs(t, `
- name: analysis
  input: {stream: ask}
  nodes:
    - {name: answer, op: map, to: "{'type': 'analysis_update', 'confidence': data.c}"}
  output: {reply: true}
`)})
	cfg := quietOpts()
	cfg.URL = enginetest.URL(e)
	cfg.Encoding = EncodingMsgpack
	cfg.Compression = true
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var agent, analysis []string
	var connects atomic.Int32
	c.OnMessage("agent_response", func(m Message) {
		mu.Lock()
		agent = append(agent, string(m.Data))
		mu.Unlock()
	})
	c.OnMessage("analysis_update", func(m Message) {
		var d struct{ Confidence float64 }
		_ = json.Unmarshal(m.Data, &d)
		if d.Confidence > 0.8 {
			mu.Lock()
			analysis = append(analysis, m.Stream+":"+string(m.Data))
			mu.Unlock()
		}
	})
	c.OnConnect(func() { connects.Add(1) })
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	h, got := collect()
	if err := c.Join(ctx, "agents", h); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "agents", map[string]any{"type": "agent_response", "delta": "héllo", "n": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "agents", map[string]any{"type": "other"}); err != nil {
		t.Fatal(err)
	}
	for _, conf := range []float64{0.9, 0.5} {
		res, err := c.Event(ctx, "ask", map[string]any{"c": conf})
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"confidence":%v,"type":"analysis_update"}`, conf); string(res) != want {
			t.Fatalf("result %s, want %s", res, want)
		}
	}
	waitFor(t, "the typed handlers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got()) == 2 && len(agent) == 1 && len(analysis) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if agent[0] != `{"delta":"héllo","n":1,"type":"agent_response"}` || analysis[0] != `ask:{"confidence":0.9,"type":"analysis_update"}` {
		t.Fatalf("typed handlers got %q and %q", agent, analysis)
	}
	if connects.Load() != 1 {
		t.Fatalf("OnConnect ran %d times", connects.Load())
	}
}

// TestQueueOverflowPolicies: while the engine is down, a full offline
// queue fails the new request (error, drop-newest), fails the oldest
// (drop-oldest), or blocks the caller until the queue drains (block).
func TestQueueOverflowPolicies(t *testing.T) {
	for _, policy := range []string{OverflowError, OverflowDropNewest, OverflowDropOldest, OverflowBlock} {
		t.Run(policy, func(t *testing.T) {
			e := enginetest.Start(t, engine.Config{})
			p := newProxy(t, e.Addr().String())
			cfg := quietOpts()
			cfg.URL = p.url()
			cfg.QueueSize = 2
			cfg.QueueOverflow = policy
			cfg.ReconnectInterval = 20 * time.Millisecond
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			p.refuse.Store(1 << 30)
			p.cut()
			waitFor(t, "reconnecting", func() bool { return c.State() == Reconnecting })
			errs := make([]chan error, 3)
			for i := range errs {
				errs[i] = make(chan error, 1)
				go func() { _, err := c.Publish(ctx, "q", i); errs[i] <- err }()
				waitFor(t, "queued", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queue) >= min(i+1, 2) })
			}
			time.Sleep(20 * time.Millisecond)
			select {
			case err := <-errs[2]:
				switch policy {
				case OverflowError:
					if !errors.Is(err, ErrQueueFull) {
						t.Fatalf("third publish: %v", err)
					}
				case OverflowDropNewest:
					if !errors.Is(err, ErrDropped) {
						t.Fatalf("third publish: %v", err)
					}
				default:
					t.Fatalf("third publish returned %v while disconnected", err)
				}
			default:
				if policy == OverflowError || policy == OverflowDropNewest {
					t.Fatal("the third publish was queued")
				}
			}
			if policy == OverflowDropOldest {
				if err := <-errs[0]; !errors.Is(err, ErrDropped) {
					t.Fatalf("first publish: %v", err)
				}
			}
			p.refuse.Store(0)
			for i, ch := range errs {
				dropped := (policy == OverflowDropOldest && i == 0) || (i == 2 && (policy == OverflowError || policy == OverflowDropNewest))
				if dropped {
					continue
				}
				select {
				case err := <-ch:
					if err != nil {
						t.Fatalf("publish %d: %v", i, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("publish %d never returned", i)
				}
			}
		})
	}
}

// TestGivesUpAfterMaxReconnectAttempts: with the engine gone, the client
// tries MaxReconnectAttempts times (OnReconnect sees each), then closes
// itself and reports ErrGaveUp.
func TestGivesUpAfterMaxReconnectAttempts(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	p := newProxy(t, e.Addr().String())
	cfg := quietOpts()
	cfg.URL = p.url()
	cfg.MaxReconnectAttempts = 3
	cfg.ReconnectInterval = 10 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var attempts []int
	var mu sync.Mutex
	gave := make(chan error, 1)
	disc := make(chan error, 1)
	c.OnReconnect(func(n int, _ time.Duration) { mu.Lock(); attempts = append(attempts, n); mu.Unlock() })
	c.OnError(func(err error) {
		if errors.Is(err, ErrGaveUp) {
			gave <- err
		}
	})
	c.OnDisconnect(func(err error) { disc <- err })
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.refuse.Store(1 << 30)
	p.cut()
	select {
	case <-gave:
	case <-time.After(10 * time.Second):
		t.Fatal("never gave up")
	}
	<-disc
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts %v", attempts)
	}
	waitFor(t, "closed", func() bool { return c.State() == Closed })
	if _, err := c.Publish(context.Background(), "r", 1); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("a publish after giving up: %v, want ErrGaveUp", err)
	}
}

// TestExactlyOnceEventsAcrossRestart: events sent with a producer to a
// checkpointing pipeline while the engine restarts are queued, resent,
// and counted once each: the window's count equals the events sent.
func TestExactlyOnceEventsAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := engine.Config{Listen: "127.0.0.1:0", Auth: engine.AuthConfig{Anonymous: true}, Data: dir,
		Rooms: []engine.RoomPolicy{{Match: "d.*", Durable: true}},
		Pipelines: mustSpecs(t, `
- name: counts
  checkpoint: 10ms
  input: {stream: ev}
  nodes:
    - {name: agg, op: aggregate, fn: count, time: "data.t", window: {tumbling: 1s}}
  output: {room: d.counts}
`)}
	start := func() *engine.Engine {
		e, err := engine.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		cfg.Listen = e.Addr().String()
		return e
	}
	e := start()
	opts := quietOpts()
	opts.URL = "ws://" + cfg.Listen + "/ws"
	opts.Producer = "sensor-1"
	opts.ReconnectInterval = 20 * time.Millisecond
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		if i == n/2 { // restart mid-stream
			ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = e.Close(ctx2)
			cancel()
			e = start()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx3, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if _, err := c.Event(ctx3, "ev", map[string]any{"t": 500}); err != nil { // all in window [0,1s)
				failed.Add(1)
				t.Errorf("event: %v", err)
			}
		}()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	defer e.Close(context.Background())
	if failed.Load() > 0 {
		t.FailNow()
	}
	// A later event closes the window; its count comes into d.counts.
	counts := make(chan []byte, 4)
	stop, err := e.Subscribe("d.counts", func(m *engine.Message) { counts <- []byte(m.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := c.Event(ctx, "ev", map[string]any{"t": 5000}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-counts:
		var d struct{ Count float64 }
		_ = json.Unmarshal(b, &d)
		if d.Count != n {
			t.Fatalf("the window counted %v events (%s); %d were sent across the restart", d.Count, b, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the window's count never came")
	}
}

// TestSendQueuesWhileDisconnected: Send writes an event without waiting;
// with a producer, one sent while disconnected is queued and delivered
// after the reconnect; without one it fails with ErrNotConnected.
func TestSendQueuesWhileDisconnected(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Pipelines: mustSpecs(t, `
- name: fwd
  input: {stream: in}
  nodes:
    - {name: tag, op: map, set: {seen: "true"}}
  output: {room: out}
`)})
	p := newProxy(t, e.Addr().String())
	got := make(chan string, 8)
	stop, _ := e.Subscribe("out", func(m *engine.Message) { got <- string(m.Data()) })
	defer stop()
	for _, producer := range []string{"", "sender-1"} {
		cfg := quietOpts()
		cfg.URL = p.url()
		cfg.Producer = producer
		cfg.ReconnectInterval = 20 * time.Millisecond
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, "in", map[string]any{"n": 1}); err != nil {
			t.Fatal(err)
		}
		if m := <-got; m != `{"n":1,"seen":true}` {
			t.Fatalf("out: %s", m)
		}
		p.refuse.Store(1 << 30)
		p.cut()
		waitFor(t, "reconnecting", func() bool { return c.State() == Reconnecting })
		err = c.Send(ctx, "in", map[string]any{"n": 2})
		if producer == "" {
			if !errors.Is(err, ErrNotConnected) {
				t.Fatalf("send while disconnected without a producer: %v", err)
			}
		} else if err != nil {
			t.Fatalf("send while disconnected: %v", err)
		}
		p.refuse.Store(0)
		if producer != "" {
			select {
			case m := <-got:
				if m != `{"n":2,"seen":true}` {
					t.Fatalf("out: %s", m)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the queued event never arrived")
			}
		}
		waitFor(t, "connected", func() bool { return c.State() == Connected })
		c.Close()
	}
}

// TestFlowControlHonoured: with flow_control, the engine tells a producer
// nearing its rate limit to pause, and to resume later; the client holds
// its publishes meanwhile, so 600 publishes at once against a limit of
// 200/s all go through, none is refused as rate_limited.
func TestFlowControlHonoured(t *testing.T) {
	e := enginetest.Start(t, engine.Config{MaxMessagesPerSecond: 200, FlowControl: true})
	opts := quietOpts()
	opts.URL = enginetest.URL(e)
	opts.Producer = "flow-test"
	opts.QueueSize = 1000
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var errs atomic.Int32
	c.OnError(func(err error) { errs.Add(1); t.Logf("error: %v", err) })
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var inRoom atomic.Int32
	stop, _ := e.Subscribe("flow", func(*engine.Message) { inRoom.Add(1) })
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, err := c.Publish(ctx, "flow", i); err != nil {
				failed.Add(1)
				t.Errorf("publish %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	st := e.Stats()
	if failed.Load() > 0 || errs.Load() > 0 || inRoom.Load() != 600 {
		t.Fatalf("%d publishes failed, %d errors, %d published into the room", failed.Load(), errs.Load(), inRoom.Load())
	}
	if st.FlowPauses == 0 {
		t.Fatal("the engine never said pause")
	}
	if took < time.Second { // 600 at 200/s with a 200 burst: at least 2 s of refill
		t.Fatalf("600 publishes took %v: the limit was not met", took)
	}
	t.Logf("600 publishes against 200/s: %v, %d pauses, no rate_limited", took, st.FlowPauses)
}

package operators

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// apPool is the function of the adaptive tests: each call waits for a
// token on release (or for its context), so the test decides when events
// finish, and knows how many calls run.
type apPool struct {
	release             chan struct{}
	running, peak, done atomic.Int32
}

func newAPPool() *apPool { return &apPool{release: make(chan struct{}, 1<<16)} }

func (p *apPool) fn(ctx context.Context, v int) (int, error) {
	n := p.running.Add(1)
	for m := p.peak.Load(); n > m && !p.peak.CompareAndSwap(m, n); m = p.peak.Load() {
	}
	defer p.running.Add(-1)
	select {
	case <-p.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.done.Add(1)
	return v, nil
}

// apHarness drives an adaptive map on a fake clock: it pushes 0, 1, 2, …,
// releases calls, and moves time one period at a time.
type apHarness struct {
	t        *testing.T
	f        *Flow
	clk      *FakeClock
	o        *ConcurrentMap[int, int]
	p        *apPool
	every    time.Duration
	got      []int
	pushed   int
	released int
}

func newAPHarness(t *testing.T, opts ConcurrencyOptions) *apHarness {
	t.Helper()
	f, clk := tfFlow(t)
	h := &apHarness{t: t, f: f, clk: clk, p: newAPPool()}
	o, err := NewConcurrentMap("cm", h.p.fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.o, h.every = o, o.Options().Adaptive.Every
	o.Out.Connect(rtCollect(&h.got))
	_ = f.Add(o)
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.releaseAll()
		_ = f.Close()
	})
	return h
}

func (h *apHarness) push(n int) {
	b := make([]int, n)
	for i := range b {
		b[i] = h.pushed + i
	}
	h.pushed += n
	h.o.Push(b)
}

func (h *apHarness) release(n int) {
	for range n {
		h.p.release <- struct{}{}
	}
	h.released += n
}

func (h *apHarness) releaseAll() { h.release(h.pushed - h.released) }

// settle waits until every released call is done and the workers hold
// as many calls as they can (so the queue's length is known: pushed −
// done − running).
func (h *apHarness) settle() {
	h.t.Helper()
	tfPollUntil(h.t, h.f, "the workers to settle", func() bool {
		want := min(h.o.Workers(), h.pushed-h.released)
		return int(h.p.done.Load()) == h.released && int(h.p.running.Load()) == want &&
			int(h.o.ad.alive.Load()) == h.o.Workers()
	})
}

func (h *apHarness) queue() int { return h.pushed - h.released - int(h.p.running.Load()) }

// tick moves the clock one period and fires the timers due.
func (h *apHarness) tick() {
	h.clk.Add(h.every)
	h.f.Advance()
}

func (h *apHarness) wantWorkers(want int, when string) {
	h.t.Helper()
	if w := h.o.Workers(); w != want {
		h.t.Fatalf("%s: %d workers, want %d", when, w, want)
	}
	if g := h.o.Stats().Snapshot().Gauges["workers"]; g != int64(want) {
		h.t.Fatalf("%s: workers gauge %d, want %d", when, g, want)
	}
}

func (h *apHarness) wantInOrder() {
	h.t.Helper()
	tfPollUntil(h.t, h.f, "every result", func() bool { return len(h.got) == h.released })
	for i, v := range h.got {
		if v != i {
			h.t.Fatalf("got[%d] = %d: lost, repeated or out of order: %v", i, v, h.got)
		}
	}
}

// A burst grows the pool by one worker per period up to Max; once the
// queue is empty it shrinks by one per Quiet periods down to Min, the
// retired goroutines exit, and sampling stops.
func TestConcurrentMapAdaptiveScalesUpAndDown(t *testing.T) {
	h := newAPHarness(t, ConcurrencyOptions{Ordered: true, MaxInFlight: 16,
		Adaptive: &AdaptiveConcurrency{Min: 1, Max: 4, High: 3, Every: 100 * time.Millisecond, Quiet: 2}})
	h.wantWorkers(1, "open")
	h.push(12)
	h.settle()
	h.tick() // the first sample above High: not yet a whole period
	h.wantWorkers(1, "one period")
	for want := 2; want <= 4; want++ {
		h.tick()
		h.settle()
		h.wantWorkers(want, "a backlog")
	}
	h.tick()
	h.tick()
	h.wantWorkers(4, "at Max")
	if p := h.p.peak.Load(); p != 4 {
		t.Fatalf("%d calls ran at once, want 4", p)
	}
	s := h.o.Stats().Snapshot()
	want := map[string]int64{"workers": 4, "queue": 8, "queue_high": 3, "queue_low": 0, "workers_min": 1, "workers_max": 4}
	for k, v := range want {
		if s.Gauges[k] != v {
			t.Errorf("gauge %s = %d, want %d (%v)", k, s.Gauges[k], v, s.Gauges)
		}
	}
	if s.Counters["scale_ups"] != 3 || s.Counters["scale_downs"] != 0 {
		t.Errorf("counters %v", s.Counters)
	}

	h.releaseAll()
	h.wantInOrder()
	for i, want := range []int{4, 4, 3, 3, 2, 2, 1} {
		h.tick()
		h.wantWorkers(want, "quiet period "+string(rune('1'+i)))
	}
	tfPollUntil(t, h.f, "the retired workers to exit", func() bool { return h.o.ad.alive.Load() == 1 })
	if n := h.f.timers.Len(); n != 1 || h.o.ad.ticking { // the stats timer only
		t.Fatalf("idle at Min: %d timers, ticking %v", n, h.o.ad.ticking)
	}
	h.tick()
	h.wantWorkers(1, "idle")
	if c := h.o.Stats().Snapshot().Counters; c["scale_downs"] != 3 {
		t.Fatalf("counters %v", c)
	}

	// one worker again: a new burst runs one call at a time, and the push
	// starts sampling again
	h.p.peak.Store(0)
	h.push(3)
	h.settle()
	time.Sleep(20 * time.Millisecond)
	if p := h.p.peak.Load(); p != 1 || !h.o.ad.ticking || h.f.timers.Len() != 2 {
		t.Fatalf("after shrinking: %d calls at once, ticking %v, %d timers", p, h.o.ad.ticking, h.f.timers.Len())
	}
	h.releaseAll()
	h.wantInOrder()
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	if g := h.o.Stats().Snapshot().Gauges["workers"]; g != 0 {
		t.Fatalf("workers gauge after Close: %d", g)
	}
}

// A queue that crosses a mark and comes back within a period does not
// resize the pool, and one that stays between the marks keeps it as it is.
func TestConcurrentMapAdaptiveHysteresis(t *testing.T) {
	h := newAPHarness(t, ConcurrencyOptions{Ordered: true, MaxInFlight: 16,
		Adaptive: &AdaptiveConcurrency{Min: 1, Max: 4, High: 3, Low: 1, Every: 100 * time.Millisecond, Quiet: 2}})
	h.push(5)
	for range 5 { // the queue swings 4, 1, 4, 1, …: above High, then at Low
		h.settle()
		if q := h.queue(); q != 4 {
			t.Fatalf("queue %d, want 4", q)
		}
		h.tick()
		h.release(3)
		h.settle()
		if q := h.queue(); q != 1 {
			t.Fatalf("queue %d, want 1", q)
		}
		h.tick()
		h.push(3)
	}
	h.wantWorkers(1, "a queue swinging across High")
	h.release(2) // queue 2: between the marks
	for range 10 {
		h.settle()
		h.tick()
	}
	h.wantWorkers(1, "a queue between the marks")

	h.push(2) // queue 4 for a whole period: grow
	h.settle()
	h.tick()
	h.tick()
	h.wantWorkers(2, "a backlog")
	h.release(2)
	for range 5 { // the queue swings 1, 2, 1, 2, …: at Low, then between
		h.settle()
		if q := h.queue(); q != 1 {
			t.Fatalf("queue %d, want 1", q)
		}
		h.tick()
		h.push(1)
		h.settle()
		h.tick()
		h.release(1)
	}
	h.wantWorkers(2, "a queue swinging across Low")
	if c := h.o.Stats().Snapshot().Counters; c["scale_ups"] != 1 || c["scale_downs"] != 0 {
		t.Fatalf("the pool flapped: %v", c)
	}
	h.releaseAll()
	h.wantInOrder()
}

// The pool starts at Min and stays within [Min, Max] however long the
// queue stays above or below the marks.
func TestConcurrentMapAdaptiveBounds(t *testing.T) {
	h := newAPHarness(t, ConcurrencyOptions{MaxInFlight: 8,
		Adaptive: &AdaptiveConcurrency{Min: 2, Max: 3, High: 1, Every: time.Second, Quiet: 1}})
	h.wantWorkers(2, "open")
	h.push(8)
	for range 10 {
		h.tick()
		h.settle()
	}
	h.wantWorkers(3, "a long backlog")
	if p := h.p.peak.Load(); p != 3 {
		t.Fatalf("%d calls ran at once, want Max 3", p)
	}
	h.releaseAll()
	tfPollUntil(t, h.f, "every result", func() bool { return len(h.got) == 8 })
	for range 10 {
		h.tick()
	}
	h.settle()
	h.wantWorkers(2, "a long quiet")
	s := h.o.Stats().Snapshot()
	if s.Counters["scale_ups"] != 1 || s.Counters["scale_downs"] != 1 || s.Gauges["workers_min"] != 2 || s.Gauges["workers_max"] != 3 {
		t.Fatalf("stats %+v", s)
	}
	slices.Sort(h.got)
	for i, v := range h.got {
		if v != i {
			t.Fatalf("unordered results %v", h.got)
		}
	}
}

// A flow stuck in Push (the in-flight window is full) runs no timers; the
// map samples while it waits, so it grows all the same.
func TestConcurrentMapAdaptiveSamplesWhilePushWaits(t *testing.T) {
	h := newAPHarness(t, ConcurrencyOptions{Ordered: true, MaxInFlight: 3,
		Adaptive: &AdaptiveConcurrency{Min: 1, Max: 3, High: 1, Every: 100 * time.Millisecond}})
	const n = 12
	go func() { // time passes and calls finish while Push waits
		for i := range n {
			for h.p.running.Load() == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			h.clk.Add(100 * time.Millisecond)
			h.p.release <- struct{}{}
			for int(h.p.done.Load()) <= i {
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	h.push(n) // no Advance before it returns
	h.released = n
	h.o.Flush()
	if w := h.o.Workers(); w < 2 {
		t.Fatalf("%d workers after a Push that waited %d periods", w, n)
	}
	h.wantInOrder()
}

// Resizing at random moments under random bursts loses, repeats and (when
// Ordered) reorders nothing, and keeps the pool within its bounds.
func TestConcurrentMapAdaptiveProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		lo := rapid.IntRange(1, 3).Draw(rt, "min")
		hi := rapid.IntRange(lo, 6).Draw(rt, "max")
		high := rapid.IntRange(0, 4).Draw(rt, "high")
		mark := high // the lowest high mark there can be
		if mark == 0 {
			mark = lo
		}
		low := rapid.IntRange(0, mark-1).Draw(rt, "low")
		ordered := rapid.Bool().Draw(rt, "ordered")
		window := rapid.IntRange(max(hi, hi-1+high), 16).Draw(rt, "max_in_flight")
		opts := ConcurrencyOptions{Ordered: ordered, MaxInFlight: window,
			Concurrency: rapid.IntRange(lo, hi).Draw(rt, "start"),
			Adaptive:    &AdaptiveConcurrency{Min: lo, Max: hi, High: high, Low: low, Quiet: rapid.IntRange(1, 3).Draw(rt, "quiet")}}
		clk := NewFakeClock(time.Unix(0, 0))
		f := NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour})
		p := newAPPool()
		o, err := NewConcurrentMap("cm", p.fn, opts)
		if err != nil {
			rt.Fatal(err)
		}
		var got []int
		o.Out.Connect(rtCollect(&got))
		_ = f.Add(o)
		_ = f.Open()
		defer f.Close()
		pushed, released := 0, 0
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0: // a burst, as big as the window allows (Push must not wait: nothing would release it)
				if room := window - o.InFlight(); room > 0 {
					k := rapid.IntRange(1, room).Draw(rt, "burst")
					b := make([]int, k)
					for i := range b {
						b[i] = pushed + i
					}
					pushed += k
					o.Push(b)
				}
			case 1:
				if left := pushed - released; left > 0 {
					k := rapid.IntRange(1, left).Draw(rt, "release")
					for range k {
						p.release <- struct{}{}
					}
					released += k
				}
			case 2:
				clk.Add(o.opts.Adaptive.Every)
				f.Advance()
			case 3:
				time.Sleep(time.Duration(rapid.IntRange(0, 200).Draw(rt, "sleep_us")) * time.Microsecond)
				f.Poll()
			}
			if w := o.Workers(); w < lo || w > hi {
				rt.Fatalf("%d workers, outside [%d, %d]", w, lo, hi)
			}
			if r := int(p.running.Load()); r > hi {
				rt.Fatalf("%d calls at once, Max %d", r, hi)
			}
		}
		for range pushed - released {
			p.release <- struct{}{}
		}
		o.Flush()
		if len(got) != pushed {
			rt.Fatalf("%d results for %d events", len(got), pushed)
		}
		// the goroutines left are the pool (a retired one may take a moment to exit)
		deadline := time.Now().Add(5 * time.Second)
		for int(o.ad.alive.Load()) != o.Workers() {
			if time.Now().After(deadline) {
				rt.Fatalf("%d worker goroutines for a pool of %d", o.ad.alive.Load(), o.Workers())
			}
			time.Sleep(100 * time.Microsecond)
		}
		if !ordered {
			slices.Sort(got)
		}
		for i, v := range got {
			if v != i {
				rt.Fatalf("got[%d] = %d (ordered %v): %v", i, v, ordered, got)
			}
		}
		if s := o.Stats().Snapshot(); s.In != uint64(pushed) || s.Out != uint64(pushed) || s.Dropped != 0 {
			rt.Fatalf("stats %+v", s)
		}
	})
}

// A reopened map samples on its new flow and ignores its old timer; a
// closed one ignores every timer.
func TestConcurrentMapAdaptiveReopenAndClose(t *testing.T) {
	h := newAPHarness(t, ConcurrencyOptions{MaxInFlight: 8,
		Adaptive: &AdaptiveConcurrency{Min: 1, Max: 2, High: 1, Every: 100 * time.Millisecond}})
	f2 := NewFlow(FlowOptions{Clock: h.clk, StatsInterval: time.Hour})
	if err := h.o.Open(f2); err != nil {
		t.Fatal(err)
	}
	h.push(4)
	h.settle()
	h.tick() // the old flow's timer: stale
	h.tick()
	h.wantWorkers(1, "old flow's timers")
	if n := h.f.timers.Len(); n != 1 {
		t.Fatalf("old flow: %d timers, want the stats timer only", n)
	}
	f2.Advance()
	h.clk.Add(100 * time.Millisecond)
	f2.Advance()
	h.wantWorkers(2, "new flow's timers")
	h.releaseAll()
	tfPollUntil(t, f2, "every result", func() bool { return len(h.got) == 4 })
	if err := h.o.Close(); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Hour)
	f2.Advance() // the timer set before Close: nothing happens
	if n := f2.timers.Len(); n != 0 {
		t.Fatalf("closed: %d timers", n)
	}
	h.o.Push([]int{1}) // dropped, no panic
	if s := h.o.Stats().Snapshot(); s.Dropped != 1 || s.Gauges["workers"] != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConcurrentMapAdaptiveValidation(t *testing.T) {
	fn := func(context.Context, int) (int, error) { return 0, nil }
	ad := func(a AdaptiveConcurrency) ConcurrencyOptions { return ConcurrencyOptions{Adaptive: &a} }
	cases := []struct {
		opts ConcurrencyOptions
		want string
	}{
		{ad(AdaptiveConcurrency{Min: -1, Max: 2}), `concurrent map "cm": option Adaptive.Min -1: must be at least 1`},
		{ad(AdaptiveConcurrency{}), "option Adaptive.Max 0 is below Adaptive.Min 1: raise Max"},
		{ad(AdaptiveConcurrency{Min: 4, Max: 2}), "option Adaptive.Max 2 is below Adaptive.Min 4"},
		{ad(AdaptiveConcurrency{Max: 2000}), "option Adaptive.Max 2000: must be at most 1024"},
		{ad(AdaptiveConcurrency{Max: 2, High: -1}), "option Adaptive.High -1: must not be negative"},
		{ad(AdaptiveConcurrency{Max: 2, Low: -1}), "option Adaptive.Low -1: must not be negative"},
		{ad(AdaptiveConcurrency{Max: 2, High: 3, Low: 3}), "option Adaptive.Low 3: must be below Adaptive.High 3"},
		{ad(AdaptiveConcurrency{Min: 2, Max: 4, Low: 2}), "option Adaptive.Low 2: must be below Adaptive.Min 2"},
		{ad(AdaptiveConcurrency{Max: 2, Every: time.Microsecond}), "option Adaptive.Every 1µs: must be at least 1ms"},
		{ad(AdaptiveConcurrency{Max: 2, Quiet: -1}), "option Adaptive.Quiet -1: must be at least 1"},
		{ConcurrencyOptions{Concurrency: 5, Adaptive: &AdaptiveConcurrency{Max: 4}}, "option Concurrency 5: with Adaptive, must be within Min 1 and Max 4"},
		{ConcurrencyOptions{MaxInFlight: 3, Adaptive: &AdaptiveConcurrency{Max: 4}}, "option MaxInFlight 3 is below Adaptive.Max 4"},
		{ConcurrencyOptions{MaxInFlight: 8, Adaptive: &AdaptiveConcurrency{Max: 4, High: 6}}, "option MaxInFlight 8 is below Adaptive.Max-1+Adaptive.High = 9"},
	}
	for _, c := range cases {
		if _, err := NewConcurrentMap("cm", fn, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	mine := &AdaptiveConcurrency{Max: 8, High: 20}
	o, err := NewConcurrentMap("cm", fn, ConcurrencyOptions{Adaptive: mine})
	if err != nil {
		t.Fatal(err)
	}
	got := o.Options()
	if got.Concurrency != 1 || got.MaxInFlight != 27 || *got.Adaptive != (AdaptiveConcurrency{Min: 1, Max: 8, High: 20, Every: 100 * time.Millisecond, Quiet: 5}) {
		t.Fatalf("defaults %+v %+v", got, *got.Adaptive)
	}
	if *mine != (AdaptiveConcurrency{Max: 8, High: 20}) {
		t.Fatalf("the caller's options were written: %+v", *mine)
	}
	if o, _ := NewConcurrentMap("cm", fn, ConcurrencyOptions{Adaptive: &AdaptiveConcurrency{Max: 8}}); o.Options().MaxInFlight != 16 {
		t.Fatalf("default MaxInFlight %d, want 2×Max", o.Options().MaxInFlight)
	}
	if s := must(NewConcurrentMap("fixed", fn, ConcurrencyOptions{Concurrency: 2})).Stats().Snapshot(); s.Gauges != nil || s.Counters != nil {
		t.Fatalf("a fixed pool has gauges or counters: %+v", s)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

package operators

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errTfBad = errors.New("bad input")

// tfFlow returns an open flow on a fake clock with no stats timer in the way.
func tfFlow(t *testing.T) (*Flow, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(time.Unix(1000, 0))
	return NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour}), clk
}

// tfPollUntil polls f (as the flow's goroutine) until cond holds or 5s pass.
func tfPollUntil(t *testing.T, f *Flow, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		f.Poll()
		time.Sleep(time.Millisecond)
	}
}

func TestFlatMap(t *testing.T) {
	f, _ := tfFlow(t)
	src := NewSource[string](f, "src")
	var got []string
	FlatMapTo(src.Stream(), func(dst []string, line string) []string {
		return append(dst, strings.Fields(line)...)
	}).Subscribe(func(w string) { got = append(got, w) })
	var twice []int
	ints := NewSource[int](f, "ints2")
	ints.Stream().FlatMap(func(dst []int, v int) []int { return append(dst, v, v) }).
		Subscribe(func(v int) { twice = append(twice, v) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]string{"a b", "", "c"})
	ints.Push([]int{1, 2})
	if strings.Join(got, ",") != "a,b,c" || !slices.Equal(twice, []int{1, 1, 2, 2}) {
		t.Fatalf("got %v twice %v", got, twice)
	}

	fm := NewFlatMap("fm", func(dst []int, v int) []int {
		for i := range v {
			dst = append(dst, i)
		}
		return dst
	})
	n := 0
	fm.Out.Connect(InletFunc[int](func(b []int) { n += len(b) }))
	batch := []int{3, 0, 5}
	if a := testing.AllocsPerRun(100, func() { fm.Push(batch) }); a != 0 {
		t.Errorf("flat_map: %v allocs per batch, want 0", a)
	}
	if s := fm.Stats().Snapshot(); s.Kind != "flat_map" || s.In != 3*101 || s.Out != 8*101 {
		t.Errorf("stats %+v", s)
	}
}

func tfParse(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errTfBad
	}
	return n, nil
}

func TestTryMapCatchFluent(t *testing.T) {
	f, _ := tfFlow(t)
	src := NewSource[string](f, "src")
	parsed, failed := TryMapTo(src.Stream(), tfParse)
	fixed, dead := Catch(failed, func(e Failed[string]) (int, bool) {
		if e.Event == "zero" {
			return 0, true
		}
		return 0, false
	})
	var got []int
	var dl []Failed[string]
	parsed.Merge(fixed).Subscribe(func(v int) { got = append(got, v) })
	dead.SubscribeBatch(func(b []Failed[string]) { dl = append(dl, b...) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]string{"1", "zero", "x", "2"})
	if !slices.Equal(got, []int{1, 2, 0}) {
		t.Fatalf("got %v", got)
	}
	if len(dl) != 1 || dl[0].Event != "x" || !errors.Is(dl[0].Err, errTfBad) || dl[0].Attempts != 1 || dl[0].Node != "try_map-2" {
		t.Fatalf("dead letters %+v", dl)
	}
	if !errors.Is(dl[0], errTfBad) || !strings.Contains(dl[0].Error(), "try_map-2: failed after 1 attempt(s): bad input") {
		t.Fatalf("Failed as error: %v", dl[0])
	}
	st := f.Stats()
	if st[1].Kind != "try_map" || st[1].In != 4 || st[1].Out != 2 || st[1].Errors != 2 {
		t.Errorf("try_map stats %+v", st[1])
	}
	if st[2].Kind != "catch_error" || st[2].In != 2 || st[2].Out != 1 || st[2].Errors != 1 {
		t.Errorf("catch_error stats %+v", st[2])
	}
}

func TestTryMapCatchGraph(t *testing.T) {
	f, _ := tfFlow(t)
	var dlq []Failed[string]
	p := NewPipeline[string, int]("p")
	p.AddNode("parse", NewTryMap("parse", tfParse)).
		AddNode("fallback", NewCatchError("fallback", func(e Failed[string]) (int, bool) { return -1, e.Event == "?" })).
		AddNode("all", NewMerge[int]("all")).
		AddNode("dlq", NewSink("dlq", func(b []Failed[string]) { dlq = append(dlq, b...) })).
		Connect("input", "parse").
		Connect("parse", "all").Connect("parse.error", "fallback").
		Connect("fallback", "all").Connect("fallback.dead", "dlq").
		Connect("all", "output")
	var got []int
	p.Out.Connect(rtCollect(&got))
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	p.Input().Push([]string{"?", "7", "oops"})
	if !slices.Equal(got, []int{7, -1}) || len(dlq) != 1 || dlq[0].Event != "oops" || dlq[0].Node != "parse" {
		t.Fatalf("got %v dlq %+v", got, dlq)
	}

	// a CatchError with no Fn dead-letters everything
	c := NewCatchError[string, int]("c", nil)
	var dead []Failed[string]
	c.Dead.Connect(rtCollect(&dead))
	c.Push([]Failed[string]{{Event: "a"}, {Event: "b"}})
	if len(dead) != 2 || c.Stats().Snapshot().Errors != 2 {
		t.Fatalf("dead %v", dead)
	}
}

// ---- concurrent map ----

// tfGated returns a fn that waits, for the values that have a gate, until
// the gate is closed, counts completions, and fails on negative values.
func tfGated(gates map[int]chan struct{}, done *atomic.Int32) func(context.Context, int) (int, error) {
	return func(ctx context.Context, v int) (int, error) {
		if g := gates[v]; g != nil {
			select {
			case <-g:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		defer done.Add(1)
		if v < 0 {
			return 0, fmt.Errorf("negative %d", v)
		}
		return v * 10, nil
	}
}

func TestConcurrentMapOrdering(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			f, _ := tfFlow(t)
			src := NewSource[int](f, "src")
			gate := make(chan struct{})
			var done atomic.Int32
			ok, _ := MapConcurrent(src.Stream(), tfGated(map[int]chan struct{}{0: gate}, &done),
				ConcurrencyOptions{Concurrency: 4, Ordered: ordered})
			var got []int
			ok.Subscribe(func(v int) { got = append(got, v) })
			if err := f.Open(); err != nil {
				t.Fatal(err)
			}
			src.Push([]int{0, 1, 2, 3})
			// 1, 2 and 3 complete while 0 waits at its gate
			tfPollUntil(t, f, "three completions", func() bool { return done.Load() == 3 })
			if ordered {
				f.Poll()
				time.Sleep(10 * time.Millisecond)
				f.Poll()
				if len(got) != 0 {
					t.Fatalf("ordered: emitted %v before event 0 completed", got)
				}
			} else {
				tfPollUntil(t, f, "three results", func() bool { return len(got) == 3 })
				if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, []int{10, 20, 30}) {
					t.Fatalf("unordered: got %v", got)
				}
			}
			close(gate)
			tfPollUntil(t, f, "four results", func() bool { return len(got) == 4 })
			want := []int{0, 10, 20, 30}
			if !ordered {
				want = []int{got[0], got[1], got[2], 0} // 0 last
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			f.Drain()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if s := f.Stats()[1]; s.In != 4 || s.Out != 4 || s.Count != 4 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestConcurrentMapBoundedInFlight(t *testing.T) {
	f, _ := tfFlow(t)
	gate := make(chan struct{})
	var done, running, maxRunning atomic.Int32
	inner := tfGated(map[int]chan struct{}{0: gate}, &done)
	o, err := NewConcurrentMap("cm", func(ctx context.Context, v int) (int, error) {
		n := running.Add(1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		defer running.Add(-1)
		return inner(ctx, v)
	}, ConcurrencyOptions{Concurrency: 1, MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	o.Out.Connect(rtCollect(&got))
	_ = f.Add(o)
	_ = f.Open()

	var pushed atomic.Bool
	blocked := make(chan bool, 1)
	go func() {
		// 0 runs, 1 waits for the worker: the window is full, so the
		// flow's goroutine must be stuck in Push with 2 not handed out.
		for running.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		blocked <- !pushed.Load()
		close(gate)
	}()
	o.Push([]int{0, 1, 2})
	pushed.Store(true)
	if !<-blocked {
		t.Fatal("Push returned while MaxInFlight events were in flight")
	}
	if o.InFlight() > 2 || len(got) < 1 || got[0] != 0 {
		t.Fatalf("in flight %d, got %v", o.InFlight(), got)
	}
	o.Flush()
	if !slices.Equal(got, []int{0, 10, 20}) || o.InFlight() != 0 {
		t.Fatalf("after Flush: got %v, in flight %d", got, o.InFlight())
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d calls ran at once with Concurrency 1", m)
	}
	_ = f.Close()
}

func TestConcurrentMapErrorsAndClose(t *testing.T) {
	f, _ := tfFlow(t)
	src := NewSource[int](f, "src")
	block := make(chan struct{}) // never closed: 99 waits until Close cancels it
	var done atomic.Int32
	ok, failed := MapConcurrent(src.Stream(), tfGated(map[int]chan struct{}{99: block}, &done),
		ConcurrencyOptions{Concurrency: 2, Ordered: true})
	var got []int
	var fails []Failed[int]
	ok.Subscribe(func(v int) { got = append(got, v) })
	failed.SubscribeBatch(func(b []Failed[int]) { fails = append(fails, b...) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]int{1, -2, 3, -4})
	tfPollUntil(t, f, "four results", func() bool { return len(got)+len(fails) == 4 })
	if !slices.Equal(got, []int{10, 30}) || len(fails) != 2 || fails[0].Event != -2 || fails[1].Event != -4 ||
		fails[0].Node != "concurrent_map-2" || fails[0].Attempts != 1 || fails[0].Err.Error() != "negative -2" {
		t.Fatalf("got %v fails %+v", got, fails)
	}
	src.Push([]int{99})
	closed := make(chan error)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the running call")
	}
	s := f.Stats()[1]
	if s.In != 5 || s.Out != 2 || s.Errors != 2 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	src.Push([]int{5}) // after Close: dropped, no panic
}

func TestConcurrentMapRun(t *testing.T) {
	f := NewFlow(FlowOptions{})
	src := NewSource[int](f, "src")
	ok, _ := MapConcurrent(src.Stream(), func(_ context.Context, v int) (int, error) {
		time.Sleep(time.Duration(v%3) * 100 * time.Microsecond)
		return v, nil
	}, ConcurrencyOptions{Concurrency: 4, MaxInFlight: 6, Ordered: true})
	var mu sync.Mutex
	var got []int
	ok.Subscribe(func(v int) { mu.Lock(); got = append(got, v); mu.Unlock() })
	// Open before Run: Source.Send reads the source's flow, which Open
	// writes (a race if Run opened the flow while this goroutine Sends).
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- f.Run(ctx) }()
	const n = 200
	for i := range n {
		if err := src.Send(i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("got[%d] = %d: out of order", i, v)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d results, want %d", len(got), n)
	}
}

func TestConcurrentMapValidation(t *testing.T) {
	fn := func(context.Context, int) (int, error) { return 0, nil }
	cases := []struct {
		opts ConcurrencyOptions
		fn   func(context.Context, int) (int, error)
		want string
	}{
		{ConcurrencyOptions{Concurrency: -1}, fn, `operators: concurrent map "cm": option Concurrency -1: must be at least 1 (0 means GOMAXPROCS)`},
		{ConcurrencyOptions{Concurrency: 4, MaxInFlight: 2}, fn, "MaxInFlight 2 is below Concurrency 4: raise MaxInFlight"},
		{ConcurrencyOptions{}, nil, `concurrent map "cm": fn is nil`},
	}
	for _, c := range cases {
		if _, err := NewConcurrentMap("cm", c.fn, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	o, err := NewConcurrentMap("cm", fn, ConcurrencyOptions{Concurrency: 3})
	if err != nil || o.Options().MaxInFlight != 6 {
		t.Fatalf("defaults: %v %+v", err, o.Options())
	}
	f, _ := tfFlow(t)
	src := NewSource[int](f, "src")
	MapConcurrent(src.Stream(), fn, ConcurrencyOptions{Concurrency: 2, MaxInFlight: 1})
	if err := f.Open(); err == nil || !strings.Contains(err.Error(), "MaxInFlight 1 is below Concurrency 2") {
		t.Fatalf("Open err = %v", err)
	}
	src.PushOne(1)
	if s := f.Stats()[1]; s.Errors != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// ---- retry ----

// tfFlaky fails each key the number of times fails says, counting calls
// and the clock's time of each.
type tfFlaky struct {
	clk   *FakeClock
	fails map[string]int
	calls map[string][]int64
}

func (fl *tfFlaky) fn(s string) (string, error) {
	fl.calls[s] = append(fl.calls[s], fl.clk.Now())
	if len(fl.calls[s]) <= fl.fails[s] {
		return "", fmt.Errorf("%s: attempt %d: %w", s, len(fl.calls[s]), errTfBad)
	}
	return strings.ToUpper(s), nil
}

func TestRetryBackoff(t *testing.T) {
	f, clk := tfFlow(t)
	t0 := clk.Now()
	fl := &tfFlaky{clk: clk, fails: map[string]int{"a": 2, "z": 100}, calls: map[string][]int64{}}
	src := NewSource[string](f, "src")
	ok, failed := RetryMap(src.Stream(), fl.fn, RetryOptions{MaxAttempts: 3, Initial: time.Second, Max: 10 * time.Second, Multiplier: 2})
	var got []string
	var fails []Failed[string]
	ok.Subscribe(func(s string) { got = append(got, s) })
	failed.SubscribeBatch(func(b []Failed[string]) { fails = append(fails, b...) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]string{"a", "b", "z"})
	if strings.Join(got, ",") != "B" {
		t.Fatalf("got %v", got)
	}
	step := func(d time.Duration) { clk.Add(d); f.Advance() }
	step(time.Second - 1)
	if len(fl.calls["a"]) != 1 {
		t.Fatalf("retried before the first wait: %v", fl.calls)
	}
	step(1) // t0+1s: second attempts, both fail; next wait 2s
	step(2*time.Second - 1)
	if len(fl.calls["a"]) != 2 || len(fl.calls["z"]) != 2 {
		t.Fatalf("calls %v", fl.calls)
	}
	step(1) // t0+3s: a succeeds, z is out of attempts
	if strings.Join(got, ",") != "B,A" {
		t.Fatalf("got %v", got)
	}
	wantAt := []int64{t0, t0 + int64(time.Second), t0 + int64(3*time.Second)}
	if !slices.Equal(fl.calls["a"], wantAt) || !slices.Equal(fl.calls["z"], wantAt) {
		t.Fatalf("attempt times a %v z %v, want %v", fl.calls["a"], fl.calls["z"], wantAt)
	}
	if len(fails) != 1 || fails[0].Event != "z" || fails[0].Attempts != 3 || fails[0].Node != "retry-2" ||
		!errors.Is(fails[0].Err, errTfBad) || !strings.Contains(fails[0].Err.Error(), "attempt 3") {
		t.Fatalf("fails %+v", fails)
	}
	s := f.Stats()[1]
	if s.Kind != "retry" || s.In != 3 || s.Out != 2 || s.Errors != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	if r := f.Operators()[1].(*Retry[string, string]); r.Held() != 0 || f.timers.Len() != 1 { // the stats timer
		t.Fatalf("held %d, timers %d", r.Held(), f.timers.Len())
	}
}

func TestRetryJitterAndCap(t *testing.T) {
	f, clk := tfFlow(t)
	t0 := clk.Now()
	fl := &tfFlaky{clk: clk, fails: map[string]int{"x": 100}, calls: map[string][]int64{}}
	r, err := NewRetry("r", fl.fn, RetryOptions{
		MaxAttempts: 4, Initial: time.Second, Max: 5 * time.Second, Multiplier: 10,
		Jitter: 0.5, Rand: func() float64 { return 0.5 }, // every wait ×0.75
	})
	if err != nil {
		t.Fatal(err)
	}
	var fails []Failed[string]
	r.Errors.Connect(rtCollect(&fails))
	_ = f.Add(r)
	_ = f.Open()
	r.Push([]string{"x"})
	for len(fails) == 0 {
		next, ok := f.NextTimer()
		if !ok || next > t0+int64(time.Hour) {
			t.Fatal("no retry timer")
		}
		clk.Set(next)
		f.Advance()
	}
	ms := func(d float64) int64 { return t0 + int64(d*float64(time.Millisecond)) }
	// waits: 1s×0.75, min(10s, 5s)×0.75, 5s×0.75
	want := []int64{t0, ms(750), ms(750 + 3750), ms(750 + 3750 + 3750)}
	if !slices.Equal(fl.calls["x"], want) {
		t.Fatalf("attempts at %v, want %v", fl.calls["x"], want)
	}
	if fails[0].Attempts != 4 {
		t.Fatalf("fails %+v", fails)
	}
}

func TestRetryFlushCloseAndStaleTimers(t *testing.T) {
	f, clk := tfFlow(t)
	fl := &tfFlaky{clk: clk, fails: map[string]int{"a": 1, "b": 1, "c": 100, "d": 100}, calls: map[string][]int64{}}
	r, err := NewRetry("r", fl.fn, RetryOptions{Initial: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var fails []Failed[string]
	r.Out.Connect(rtCollect(&got))
	r.Errors.Connect(rtCollect(&fails))
	_ = f.Add(r)
	_ = f.Open()

	r.Push([]string{"a", "c"}) // both held, timers at +1s
	f.Drain()                  // Flush: a succeeds, c fails for good
	if strings.Join(got, ",") != "A" || len(fails) != 1 || fails[0].Event != "c" || fails[0].Attempts != 2 || r.Held() != 0 {
		t.Fatalf("after Flush: got %v fails %+v held %d", got, fails, r.Held())
	}
	clk.Add(500 * time.Millisecond)
	r.Push([]string{"b"}) // reuses a freed slot; its timer is at +1.5s
	clk.Add(500 * time.Millisecond)
	f.Advance() // the stale +1s timers fire: they must not touch b
	if len(fl.calls["b"]) != 1 {
		t.Fatalf("a stale timer retried b: %v", fl.calls["b"])
	}
	clk.Add(500 * time.Millisecond)
	f.Advance()
	if strings.Join(got, ",") != "A,B" {
		t.Fatalf("got %v", got)
	}

	r.Push([]string{"d"})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats().Snapshot(); s.Dropped != 1 || r.Held() != 0 {
		t.Fatalf("after Close: stats %+v held %d", s, r.Held())
	}
	clk.Add(time.Hour)
	f.Advance() // d's timer: nothing happens
	if len(fl.calls["d"]) != 1 {
		t.Fatalf("d retried after Close: %v", fl.calls["d"])
	}
}

func TestRetryMaxPending(t *testing.T) {
	f, clk := tfFlow(t)
	fl := &tfFlaky{clk: clk, fails: map[string]int{"a": 100, "b": 100}, calls: map[string][]int64{}}
	r, err := NewRetry("r", fl.fn, RetryOptions{MaxPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	var fails []Failed[string]
	r.Errors.Connect(rtCollect(&fails))
	_ = f.Add(r)
	_ = f.Open()
	r.Push([]string{"a", "b"})
	if r.Held() != 1 || len(fails) != 1 || fails[0].Event != "b" || fails[0].Attempts != 1 {
		t.Fatalf("held %d fails %+v", r.Held(), fails)
	}
}

func TestRetryValidation(t *testing.T) {
	fn := func(s string) (string, error) { return s, nil }
	cases := []struct {
		opts RetryOptions
		want string
	}{
		{RetryOptions{MaxAttempts: -1}, `operators: retry "r": option MaxAttempts -1: must be at least 1`},
		{RetryOptions{Initial: -time.Second}, "Initial -1s: must not be negative"},
		{RetryOptions{Initial: time.Second, Max: time.Millisecond}, "Max 1ms is below Initial 1s: raise Max"},
		{RetryOptions{Multiplier: 0.5}, "Multiplier 0.5: must be at least 1"},
		{RetryOptions{Jitter: 2}, "Jitter 2: must be in [0, 1]"},
		{RetryOptions{MaxPending: -3}, "MaxPending -3: must not be negative"},
	}
	for _, c := range cases {
		if _, err := NewRetry("r", fn, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	if _, err := NewRetry[string, string]("r", nil, RetryOptions{}); err == nil || !strings.Contains(err.Error(), "fn is nil") {
		t.Errorf("nil fn: err = %v", err)
	}
	o := RetryOptions{Initial: time.Minute}
	o.EnsureDefaults()
	if o.MaxAttempts != 3 || o.Max != time.Minute || o.Multiplier != 2 || o.MaxPending != 1024 || o.Validate() != nil {
		t.Errorf("defaults %+v", o)
	}
	f, _ := tfFlow(t)
	src := NewSource[string](f, "src")
	RetryMap(src.Stream(), fn, RetryOptions{Jitter: -1})
	if err := f.Open(); err == nil || !strings.Contains(err.Error(), "Jitter -1") {
		t.Fatalf("Open err = %v", err)
	}
}

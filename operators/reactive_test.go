package operators

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The reactive operators are tested with scripts: steps separated by ';',
// each a time (a duration since the epoch) and the events pushed then, as
// one batch. A step first sets the fake clock and calls Advance (so the
// timers due by then fire), then pushes; a time written "!1s" pushes
// without Advance (an event that arrives before the flow fires a due
// timer). The word "flush" drains the flow after the step's push. The
// trace is every emitted event as "time:event", space-separated.
//
//	"0 a b; 500ms c; 1.5s; 2s flush"

// rxRig is a flow on a fake clock with a source of strings and a trace.
type rxRig struct {
	t     *testing.T
	clk   *FakeClock
	f     *Flow
	src   *Source[string]
	trace []string
}

func newRxRig(t *testing.T) *rxRig {
	t.Helper()
	clk := NewFakeClock(time.Unix(0, 0))
	r := &rxRig{t: t, clk: clk, f: NewFlow(FlowOptions{Clock: clk})}
	r.src = NewSource[string](r.f, "src")
	return r
}

// record returns a subscriber that appends "time:v" to the trace.
func rxRecord[T any](r *rxRig) func(T) {
	return func(v T) {
		r.trace = append(r.trace, fmt.Sprintf("%v:%v", time.Duration(r.clk.Now()), v))
	}
}

// run opens the flow, plays script and returns the trace.
func (r *rxRig) run(script string) string {
	r.t.Helper()
	if err := r.f.Open(); err != nil {
		r.t.Fatal(err)
	}
	for step := range strings.SplitSeq(script, ";") {
		words := strings.Fields(step)
		if len(words) == 0 {
			continue
		}
		at, advance := words[0], true
		if strings.HasPrefix(at, "!") {
			at, advance = at[1:], false
		}
		d, err := time.ParseDuration(at)
		if at == "0" {
			d, err = 0, nil
		}
		if err != nil {
			r.t.Fatalf("script %q: step %q: %v", script, step, err)
		}
		r.clk.Set(int64(d))
		if advance {
			r.f.Advance()
		}
		var batch []string
		flush := false
		for _, w := range words[1:] {
			if w == "flush" {
				flush = true
			} else {
				batch = append(batch, w)
			}
		}
		if len(batch) > 0 {
			r.src.Push(batch)
		}
		if flush {
			r.f.Drain()
		}
	}
	return strings.Join(r.trace, " ")
}

// rxCounts is the part of a snapshot the tests check.
type rxCounts struct{ In, Out, Dropped, Errors uint64 }

func rxStats(o Operator) rxCounts {
	s := o.Stats().Snapshot()
	return rxCounts{s.In, s.Out, s.Dropped, s.Errors}
}

func rxCheck(t *testing.T, script, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("script %q:\n got  %q\n want %q", script, got, want)
	}
}

func TestReactiveDebounce(t *testing.T) {
	cases := []struct {
		name, script, want string
		stats              rxCounts
	}{
		{"burst emits the last, wait after it", "0 a; 500ms b; 900ms c; 1.8s; 1.9s; 3s", "1.9s:c", rxCounts{3, 1, 2, 0}},
		{"silence of exactly wait", "0 a; 1s b; 2s", "1s:a 2s:b", rxCounts{2, 2, 0, 0}},
		{"due passed, timer not fired yet", "0 a; !1s b; 2s", "1s:a 2s:b", rxCounts{2, 2, 0, 0}},
		{"late advance", "0 a; 300ms b; 5s", "5s:b", rxCounts{2, 1, 1, 0}},
		{"one batch", "0 a b c; 1s", "1s:c", rxCounts{3, 1, 2, 0}},
		{"flush on drain", "0 a; 300ms b flush; 2s", "300ms:b", rxCounts{2, 1, 1, 0}},
		{"burst after flush, old timer pending", "0 a; 100ms flush; 200ms b; 1s; 1.1s; 1.2s", "100ms:a 1.2s:b", rxCounts{2, 2, 0, 0}},
		{"nothing pending", "1s; 2s flush", "", rxCounts{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			s := r.src.Stream().Debounce(time.Second)
			s.Subscribe(rxRecord[string](r))
			op := r.f.Operators()[1].(*Debounce[string, struct{}])
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
			if op.Pending() != 0 && strings.Contains(c.script, "flush") {
				t.Errorf("pending %d after flush", op.Pending())
			}
		})
	}
}

func TestReactiveDebounceBy(t *testing.T) {
	cases := []struct {
		name, script, want string
		dropped            uint64
	}{
		{"keys on their own", "0 a1 b1; 500ms a2; 1s; 1.5s", "1s:b1 1.5s:a2", 1},
		{"one batch, two keys", "0 a1 b1 a2 b2 a3; 1s", "1s:a3 1s:b2", 3},
		{"due passed mid-batch", "0 a1 b1; !1s a2 b2; 2s", "1s:a1 1s:b1 2s:a2 2s:b2", 0},
		{"flush in last-arrival order", "0 b1; 100ms a1; 200ms b2 flush; 5s", "200ms:a1 200ms:b2", 1},
		{"slot reused after flush", "0 a1; 100ms flush; 200ms b1; 1s; 1.2s", "100ms:a1 1.2s:b1", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			DebounceBy(r.src.Stream(), time.Second, func(s string) byte { return s[0] }).Subscribe(rxRecord[string](r))
			op := r.f.Operators()[1].(*Debounce[string, byte])
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op).Dropped; got != c.dropped {
				t.Errorf("dropped %d, want %d", got, c.dropped)
			}
			if op.Pending() != 0 {
				t.Errorf("pending %d at the end", op.Pending())
			}
		})
	}
}

func TestReactiveDebounceBySlotsReused(t *testing.T) {
	r := newRxRig(t)
	op, err := NewDebounceBy("d", time.Second, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	_ = r.f.Add(op)
	r.src.Out.Connect(op)
	_ = r.f.Open()
	keys := []string{"a", "b", "c", "d"}
	for round := range 5 {
		r.clk.Set(int64(round) * int64(2*time.Second))
		r.f.Advance()
		r.src.Push(keys)
		if op.Pending() != len(keys) {
			t.Fatalf("round %d: pending %d", round, op.Pending())
		}
	}
	r.clk.Add(time.Hour)
	r.f.Advance()
	if op.Pending() != 0 || len(op.free) != len(keys) {
		t.Fatalf("pending %d, free slots %d: want 0, %d", op.Pending(), len(op.free), len(keys))
	}
	if s := rxStats(op); s.Out != 20 || s.In != 20 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReactiveThrottle(t *testing.T) {
	cases := []struct {
		name, script, want string
		trailing           bool
		stats              rxCounts
	}{
		{"leading", "0 a; 500ms b; 999ms c; 1s d; 1.5s e; 2s f", "0s:a 1s:d 2s:f", false, rxCounts{6, 3, 3, 0}},
		{"leading batch", "0 a b c; 1s d e", "0s:a 1s:d", false, rxCounts{5, 2, 3, 0}},
		{"leading idle gap", "0 a; 5s b; 5.5s c", "0s:a 5s:b", false, rxCounts{3, 2, 1, 0}},
		{"leading flush holds nothing", "0 a b flush", "0s:a", false, rxCounts{2, 1, 1, 0}},
		{"trailing", "0 a; 300ms b; 600ms c; 1s; 1.5s d; 2s; 2.5s; 3.1s e", "0s:a 1s:c 2s:d 3.1s:e", true, rxCounts{5, 4, 1, 0}},
		{"trailing batch", "0 a b c; 1s; 2s", "0s:a 1s:c", true, rxCounts{3, 2, 1, 0}},
		{"trailing, due passed, timer not fired", "0 a; 300ms b; !1.2s c; 2s; 2.2s", "0s:a 1.2s:b 2.2s:c", true, rxCounts{3, 3, 0, 0}},
		{"trailing at the boundary", "0 a; 500ms b; 1s c; 2s", "0s:a 1s:b 2s:c", true, rxCounts{3, 3, 0, 0}},
		{"trailing flush", "0 a; 300ms b flush; 1s; 1.2s c; 1.3s", "0s:a 300ms:b 1.3s:c", true, rxCounts{3, 3, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			s := r.src.Stream()
			if c.trailing {
				s = s.ThrottleTrailing(time.Second)
			} else {
				s = s.Throttle(time.Second)
			}
			s.Subscribe(rxRecord[string](r))
			op := r.f.Operators()[1].(*Throttle[string])
			if op.Trailing() != c.trailing || op.Interval() != time.Second {
				t.Fatalf("trailing %v interval %v", op.Trailing(), op.Interval())
			}
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
		})
	}
}

func TestReactiveBuffer(t *testing.T) {
	cases := []struct {
		name, script, want string
		stats              rxCounts
	}{
		{"groups of three", "0 a b; 1s c d e f g; 2s flush", "1s:[a b c] 1s:[d e f] 2s:[g]", rxCounts{7, 3, 0, 0}},
		{"exact multiple, flush emits nothing", "0 a b c flush", "0s:[a b c]", rxCounts{3, 1, 0, 0}},
		{"one at a time", "0 a; 1s b; 2s c; 3s d", "2s:[a b c]", rxCounts{4, 1, 0, 0}},
		{"time does not matter", "0 a; 1h; 2h b flush", "2h0m0s:[a b]", rxCounts{2, 1, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			Buffer(r.src.Stream(), 3).Subscribe(rxRecord[[]string](r))
			op := r.f.Operators()[1].(*CountBuffer[string])
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
		})
	}
}

// TestReactiveBufferOwnership checks that every emitted group is a slice
// of its own: the receiver may keep and change it.
func TestReactiveBufferOwnership(t *testing.T) {
	for _, timed := range []bool{false, true} {
		r := newRxRig(t)
		var kept [][]string
		keep := func(b [][]string) { kept = append(kept, b...) }
		if timed {
			BufferTime(r.src.Stream(), time.Second, 2).SubscribeBatch(keep)
		} else {
			Buffer(r.src.Stream(), 2).SubscribeBatch(keep)
		}
		r.run("0 a b c d e; 500ms f g h; 2s flush")
		for _, g := range kept {
			g[0] = "x" + g[0]  // must not touch another group
			_ = append(g, "z") // nor may growing it
		}
		got := fmt.Sprint(kept)
		if want := "[[xa b] [xc d] [xe f] [xg h]]"; got != want {
			t.Errorf("timed=%v: kept %s, want %s", timed, got, want)
		}
	}
}

func TestReactiveBufferTime(t *testing.T) {
	cases := []struct {
		name, script, want string
		max                int
		stats              rxCounts
	}{
		{"per interval, empty ones skipped", "0 a; 200ms b; 1s; 1.5s c; 2s; 3s; 3.2s d flush; 5s", "1s:[a b] 2s:[c] 3.2s:[d]", 0, rxCounts{4, 3, 0, 0}},
		{"aligned to the epoch", "1.5s a; 1.9s b; 2s", "2s:[a b]", 0, rxCounts{2, 1, 0, 0}},
		{"event at the boundary opens the next", "0 a; 1s b; 2s", "1s:[a] 2s:[b]", 0, rxCounts{2, 2, 0, 0}},
		{"due passed, timer not fired", "0 a; !1s b; 2s", "1s:[a] 2s:[b]", 0, rxCounts{2, 2, 0, 0}},
		{"late advance", "0 a; 500ms b; !1.5s c; 3s", "1.5s:[a b] 3s:[c]", 0, rxCounts{3, 2, 0, 0}},
		{"max splits a batch", "0 a b c; 500ms d e; 1s", "0s:[a b] 500ms:[c d] 1s:[e]", 2, rxCounts{5, 3, 0, 0}},
		{"max exactly, nothing left", "0 a b; 1s; 2s", "0s:[a b]", 2, rxCounts{2, 1, 0, 0}},
		{"flush, then the same interval", "0 a; 200ms flush; 400ms b; 1s", "200ms:[a] 1s:[b]", 0, rxCounts{2, 2, 0, 0}},
		{"flush, then a later interval", "0 a; 200ms flush; 2.5s b; 3s", "200ms:[a] 3s:[b]", 0, rxCounts{2, 2, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			BufferTime(r.src.Stream(), time.Second, c.max).Subscribe(rxRecord[[]string](r))
			op := r.f.Operators()[1].(*TimeBuffer[string])
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
		})
	}
}

func TestReactiveBufferTimeOneTimer(t *testing.T) {
	r := newRxRig(t)
	BufferTime(r.src.Stream(), time.Second, 0).Subscribe(func([]string) {})
	r.run("0 a")
	before := r.f.timers.Len()
	for i := range 100 {
		r.clk.Set(int64(i) * int64(time.Millisecond))
		r.src.Push([]string{"x"})
	}
	if n := r.f.timers.Len(); n != before {
		t.Fatalf("timers %d, want %d (one per buffer)", n, before)
	}
}

func TestReactiveDedup(t *testing.T) {
	cases := []struct {
		name, script, want string
		maxKeys            int
		stats              rxCounts
		evicted            uint64
	}{
		{"window from the pass, repeats do not extend it", "0 a b a; 500ms a c; 999ms b; 1s a; 1.5s a; 2s a b",
			"0s:a 0s:b 500ms:c 1s:a 2s:a 2s:b", 0, rxCounts{10, 6, 4, 0}, 0},
		{"no advance: swept on push", "0 a; !1s a; !1.5s a; !2s a", "0s:a 1s:a 2s:a", 0, rxCounts{4, 3, 1, 0}, 0},
		{"max keys evicts the oldest", "0 a b c; 100ms a; 200ms c", "0s:a 0s:b 0s:c 100ms:a", 2, rxCounts{5, 4, 1, 0}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRxRig(t)
			DedupBy(r.src.Stream(), func(s string) string { return s }, time.Second, c.maxKeys).Subscribe(rxRecord[string](r))
			op := r.f.Operators()[1].(*Dedup[string, string])
			rxCheck(t, c.script, r.run(c.script), c.want)
			if got := rxStats(op); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
			if op.Evicted() != c.evicted {
				t.Errorf("evicted %d, want %d", op.Evicted(), c.evicted)
			}
			if op.Len() > op.MaxKeys() {
				t.Errorf("len %d > max keys %d", op.Len(), op.MaxKeys())
			}
		})
	}
}

// TestReactiveDedupExpiry checks that keys leave when their window ends,
// by the sweep timer, without any Push.
func TestReactiveDedupExpiry(t *testing.T) {
	r := newRxRig(t)
	r.src.Stream().Dedup(func(s string) string { return s }, time.Second).Subscribe(func(string) {})
	op := r.f.Operators()[1].(*Dedup[string, string])
	steps := []struct {
		script string
		keys   int
	}{
		{"0 a b", 2}, {"500ms c", 3}, {"999ms", 3}, {"1s", 1}, {"1.4s", 1}, {"1.5s", 0}, {"10s", 0},
	}
	for _, s := range steps {
		r.run(s.script)
		if op.Len() != s.keys {
			t.Fatalf("after %q: %d keys, want %d", s.script, op.Len(), s.keys)
		}
	}
	if op.armed {
		t.Fatal("sweep timer still armed with no keys")
	}
	// many keys over a long time: memory follows the window, not the total
	for i := range 10_000 {
		r.clk.Set(int64(20*time.Second) + int64(i)*int64(time.Millisecond))
		r.f.Advance()
		r.src.PushOne(fmt.Sprint(i))
		if op.Len() > 1001 {
			t.Fatalf("at %d: %d keys remembered, window holds 1000", i, op.Len())
		}
	}
	if op.Evicted() != 0 {
		t.Fatalf("evicted %d", op.Evicted())
	}
}

func TestReactiveConfigErrors(t *testing.T) {
	id := func(s string) string { return s }
	ctors := []struct {
		err  error
		want string
	}{
		{rxErr(NewDebounce[string]("x", 0)), `operators: debounce "x": duration must be > 0 (got 0s)`},
		{rxErr(NewDebounceBy[string, string]("x", time.Second, nil)), `operators: debounce "x": key func is nil`},
		{rxErr(NewDebounceBy("x", -time.Second, id)), `operators: debounce "x": duration must be > 0 (got -1s)`},
		{rxErr(NewThrottle[string]("x", 0)), `operators: throttle "x": duration must be > 0 (got 0s)`},
		{rxErr(NewThrottleTrailing[string]("x", -1)), `operators: throttle "x": duration must be > 0 (got -1ns)`},
		{rxErr(NewBuffer[string]("x", 0)), `operators: buffer "x": size must be > 0 (got 0)`},
		{rxErr(NewBufferTime[string]("x", 0, 0)), `operators: buffer_time "x": duration must be > 0 (got 0s)`},
		{rxErr(NewBufferTime[string]("x", time.Second, -1)), `operators: buffer_time "x": max count must be >= 0 (0: no bound) (got -1)`},
		{rxErr(NewDedup[string, string]("x", nil, time.Second, 0)), `operators: dedup "x": key func is nil`},
		{rxErr(NewDedup("x", id, 0, 0)), `operators: dedup "x": window must be > 0 (got 0s)`},
		{rxErr(NewDedup("x", id, time.Second, -1)), `operators: dedup "x": maxKeys must be >= 0 (0: 65536) (got -1)`},
	}
	for _, c := range ctors {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("err %v, want %q", c.err, c.want)
		}
	}
	if _, err := NewDedup("x", id, time.Second, 0); err != nil {
		t.Fatal(err)
	}

	// The fluent API cannot return the error: Open does, and events that
	// reach the operator anyway are counted as errors.
	fluent := []struct {
		build func(s *Stream[string])
		want  string
	}{
		{func(s *Stream[string]) { s.Debounce(0) }, `debounce "debounce-2": duration must be > 0`},
		{func(s *Stream[string]) { DebounceBy[string, int](s, time.Second, nil) }, `debounce "debounce-2": key func is nil`},
		{func(s *Stream[string]) { s.Throttle(0) }, `throttle "throttle-2": duration must be > 0`},
		{func(s *Stream[string]) { s.ThrottleTrailing(0) }, `throttle "throttle-2": duration must be > 0`},
		{func(s *Stream[string]) { Buffer(s, -3) }, `buffer "buffer-2": size must be > 0 (got -3)`},
		{func(s *Stream[string]) { BufferTime(s, 0, 1) }, `buffer_time "buffer_time-2": duration must be > 0`},
		{func(s *Stream[string]) { s.Dedup(id, 0) }, `dedup "dedup-2": window must be > 0`},
		{func(s *Stream[string]) { DedupBy(s, id, time.Second, -5) }, `dedup "dedup-2": maxKeys must be >= 0`},
	}
	for _, c := range fluent {
		f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
		src := NewSource[string](f, "src")
		c.build(src.Stream())
		err := f.Open()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open: %v, want %q", err, c.want)
			continue
		}
		op := f.Operators()[1]
		src.Push([]string{"a", "b"})
		f.Drain()
		if got := rxStats(op); got != (rxCounts{In: 2, Errors: 2}) {
			t.Errorf("%s: stats %+v after a push", op.Stats().Name, got)
		}
	}
}

func rxErr[T any](_ T, err error) error { return err }

// TestReactiveGraph uses the operators as graph nodes.
func TestReactiveGraph(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	f := NewFlow(FlowOptions{Clock: clk})
	dd, _ := NewDedup("dd", func(s string) string { return s }, time.Minute, 0)
	th, _ := NewThrottleTrailing[string]("th", time.Second)
	db, _ := NewDebounce[string]("db", time.Second)
	bt, _ := NewBufferTime[string]("bt", 10*time.Second, 0)
	p := NewPipeline[string, []string]("p")
	p.AddNode("dd", dd).AddNode("th", th).AddNode("db", db).AddNode("bt", bt).
		Connect("input", "dd").Connect("dd", "th").Connect("th", "db").Connect("db", "bt").Connect("bt", "output")
	var got [][]string
	p.Out.Connect(InletFunc[[]string](func(b [][]string) { got = append(got, b...) }))
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	events := map[int]string{0: "a", 4: "a", 8: "b", 12: "c", 16: "d"} // by 100ms tick
	for tick := range 200 {
		clk.Set(int64(tick) * int64(100*time.Millisecond))
		f.Advance()
		if ev, ok := events[tick]; ok {
			p.Input().PushOne(ev)
		}
	}
	// dedup drops the second a. The throttle passes a (0s), holds b and
	// emits it at 1s, holds c, replaces it by d and emits d at 2s. The
	// debounce's timers were set before the throttle's, so at 1s it emits
	// a before b arrives, at 2s b before d arrives, and d at 3s. The
	// buffer_time emits [a b d] at 10s.
	if fmt.Sprint(got) != "[[a b d]]" {
		t.Fatalf("got %v", got)
	}
	if s := rxStats(th); s != (rxCounts{In: 4, Out: 3, Dropped: 1}) {
		t.Fatalf("throttle stats %+v", s)
	}
}

// TestReactiveRun drives the operators with the system clock on Run's
// goroutine while other goroutines Send events and read Stats (for -race).
func TestReactiveRun(t *testing.T) {
	f := NewFlow(FlowOptions{StatsInterval: time.Millisecond})
	src := NewSource[int](f, "src")
	var mu sync.Mutex
	groups, events := 0, 0
	s := DedupBy(src.Stream(), func(v int) int { return v }, 50*time.Millisecond, 64)
	s = DebounceBy(s.ThrottleTrailing(time.Microsecond), 2*time.Millisecond, func(v int) int { return v % 8 })
	BufferTime(s, 5*time.Millisecond, 4).Subscribe(func(g []int) {
		mu.Lock()
		groups++
		events += len(g)
		mu.Unlock()
	})
	// Open before the senders start: Flow.Open re-sets Source.flow, which
	// Send reads (a race in Source, reported; Run's own Open is a no-op).
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				if err := src.Send(w*1000 + i%100); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					_ = f.Stats()
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	st := f.Stats()
	if st[0].In != 2000 {
		t.Fatalf("source in %d", st[0].In)
	}
	mu.Lock()
	defer mu.Unlock()
	if groups == 0 || uint64(events) != st[3].Out {
		t.Fatalf("%d groups, %d events; debounce out %d", groups, events, st[3].Out)
	}
	for _, s := range st[1:4] {
		if s.In != s.Out+s.Dropped {
			t.Errorf("%s: in %d != out %d + dropped %d after drain", s.Name, s.In, s.Out, s.Dropped)
		}
	}
}

// TestReactiveReopen moves operators that hold state to a new flow (what
// a reload keeping them does): their timers must be set in the new one.
func TestReactiveReopen(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	id := func(s string) string { return s }
	db, _ := NewDebounceBy("db", time.Second, id)
	d1, _ := NewDebounce[string]("d1", time.Second)
	th, _ := NewThrottleTrailing[string]("th", time.Second)
	bt, _ := NewBufferTime[string]("bt", time.Second, 0)
	dd, _ := NewDedup("dd", id, time.Second, 0)
	type node interface {
		Operator
		Inlet[string]
	}
	nodes := []node{db, d1, th, dd}
	f1 := NewFlow(FlowOptions{Clock: clk})
	for _, n := range nodes {
		_ = f1.Add(n)
	}
	_ = f1.Add(bt)
	_ = f1.Open()
	for _, n := range nodes {
		n.Push([]string{"a", "b"})
	}
	bt.Push([]string{"a", "b"})
	_ = f1.Close() // its timers are never fired

	f2 := NewFlow(FlowOptions{Clock: clk})
	var got []string
	rec := func(name string) InletFunc[string] {
		return func(b []string) { got = append(got, name+":"+strings.Join(b, ",")) }
	}
	db.Out.Disconnect()
	db.Out.Connect(rec("db"))
	d1.Out.Connect(rec("d1"))
	th.Out.Connect(rec("th"))
	bt.Out.Connect(InletFunc[[]string](func(b [][]string) { got = append(got, fmt.Sprint("bt:", b)) }))
	for _, n := range nodes {
		_ = f2.Add(n)
	}
	_ = f2.Add(bt)
	if err := f2.Open(); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	f2.Advance()
	if want := "db:a db:b d1:b th:b bt:[[a b]]"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	if dd.Len() != 0 {
		t.Fatalf("dedup remembers %d keys after its window in the new flow", dd.Len())
	}
}

// TestReactiveClosedTimers checks that the timers of a closed operator do
// nothing, and that opening it again on the same flow sets them again.
func TestReactiveClosedTimers(t *testing.T) {
	r := newRxRig(t)
	var got []string
	rec := func(name string) func(string) { return func(v string) { got = append(got, name+":"+v) } }
	r.src.Stream().Debounce(time.Second).Subscribe(rec("db"))
	r.src.Stream().ThrottleTrailing(time.Second).Subscribe(rec("th"))
	BufferTime(r.src.Stream(), time.Second, 0).Subscribe(func(g []string) { got = append(got, fmt.Sprint("bt:", g)) })
	r.src.Stream().Dedup(func(s string) string { return s }, time.Second).Subscribe(rec("dd"))
	r.run("0 a b")
	got = got[:0] // the throttle's and the dedup's a
	ops := []Operator{}
	for _, op := range r.f.Operators() {
		switch op.(type) {
		case *Debounce[string, struct{}], *Throttle[string], *TimeBuffer[string], *Dedup[string, string]:
			ops = append(ops, op)
		}
	}
	if len(ops) != 4 {
		t.Fatalf("%d operators", len(ops))
	}
	for _, op := range ops {
		_ = op.Close()
	}
	r.run("2s")
	if len(got) != 0 {
		t.Fatalf("closed operators emitted %v", got)
	}
	dd := ops[3].(*Dedup[string, string])
	if dd.Len() != 2 {
		t.Fatalf("closed dedup swept: %d keys", dd.Len())
	}
	for _, op := range ops {
		if err := op.Open(r.f); err != nil {
			t.Fatal(err)
		}
	}
	r.run("3s")
	if want := "db:b th:b bt:[a b]"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	if dd.Len() != 0 {
		t.Fatalf("reopened dedup did not sweep: %d keys", dd.Len())
	}
}

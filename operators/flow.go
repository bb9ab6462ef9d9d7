package operators

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// FlowOptions configures a Flow. Every field is optional.
type FlowOptions struct {
	// Name names the flow in stats and errors. Default "flow".
	Name string
	// Clock is the flow's only time source. Default SystemClock{}; tests
	// pass a *FakeClock.
	Clock Clock
	// StatsInterval is how often the operators' latency histograms are
	// published for Stats. Default 1s.
	StatsInterval time.Duration
	// Notify, if set, is called (from the posting goroutine) after each
	// Post, so a runner that parks between events knows to wake up.
	Notify func()
	// PostQueue is how many Post calls may wait for the flow's goroutine
	// before Post blocks. Default 4096.
	PostQueue int
}

// EnsureDefaults fills every zero field with its default.
func (o *FlowOptions) EnsureDefaults() {
	if o.Name == "" {
		o.Name = "flow"
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = time.Second
	}
	if o.PostQueue <= 0 {
		o.PostQueue = 4096
	}
}

// Flow is the single-goroutine runtime that a set of connected operators
// shares: one clock, one timer queue, one completion queue. Everything
// that touches the operators (Push into a source, Advance, Poll, Drain,
// Close) runs on one goroutine at a time, the flow's goroutine: whoever
// calls Run, or the engine's pipeline worker, or a test. Post and Stats
// are safe from any goroutine.
//
// A flow never starts a goroutine of its own, except a concurrent map's
// workers and its one poster (which hand results back through Post).
type Flow struct {
	opts   FlowOptions
	clock  Clock
	timers Timers
	ops    []Operator
	posts  chan func()
	wake   chan struct{}
	done   chan struct{} // closed by Close: Post fails from then on
	opsMu  sync.Mutex    // guards ops against Stats from other goroutines
	opened bool
	closed bool
}

// NewFlow returns an empty flow.
func NewFlow(opts FlowOptions) *Flow {
	opts.EnsureDefaults()
	return &Flow{opts: opts, clock: opts.Clock, posts: make(chan func(), opts.PostQueue), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.opts.Name }

// Clock returns the flow's clock.
func (f *Flow) Clock() Clock { return f.clock }

// Now reads the flow's clock (Unix nanoseconds).
func (f *Flow) Now() int64 { return f.clock.Now() }

// At schedules t.OnTimer(when, arg). Flow goroutine only.
func (f *Flow) At(when int64, t Timed, arg uint64) { f.timers.At(when, t, arg) }

// After schedules t.OnTimer(now+d, arg). Flow goroutine only.
func (f *Flow) After(d time.Duration, t Timed, arg uint64) { f.timers.At(f.Now()+int64(d), t, arg) }

// Add registers op with the flow: it is opened by Open (or now, if the
// flow is open already), flushed by Drain and closed by Close, in the
// order operators were added (so add upstream operators first).
func (f *Flow) Add(op Operator) error {
	if f.closed {
		return ErrClosed
	}
	f.opsMu.Lock()
	for _, o := range f.ops {
		if o == op { // added again (a pipeline rebuilt around a kept operator)
			f.opsMu.Unlock()
			return nil
		}
	}
	f.ops = append(f.ops, op)
	f.opsMu.Unlock()
	if f.opened {
		return op.Open(f)
	}
	return nil
}

// Remove takes op out of the flow and closes it (a reload dropped it).
// Timers it set may still fire; it must ignore them once closed.
func (f *Flow) Remove(op Operator) error {
	f.opsMu.Lock()
	for i, o := range f.ops {
		if o == op {
			f.ops = append(f.ops[:i], f.ops[i+1:]...)
			break
		}
	}
	f.opsMu.Unlock()
	op.Stats().publish()
	return op.Close()
}

// Operators returns the registered operators.
func (f *Flow) Operators() []Operator { return f.ops }

// Open opens every operator and starts publishing stats. Calling it again
// does nothing.
func (f *Flow) Open() error {
	if f.closed {
		return ErrClosed
	}
	if f.opened {
		return nil
	}
	f.opened = true
	for _, op := range f.ops {
		if err := op.Open(f); err != nil {
			return fmt.Errorf("operators: %s: open %s: %w", f.opts.Name, op.Stats().Name, err)
		}
	}
	f.After(f.opts.StatsInterval, statsTimer{f}, 0)
	return nil
}

type statsTimer struct{ f *Flow }

func (s statsTimer) OnTimer(int64, uint64) {
	s.f.publishStats()
	if !s.f.closed {
		s.f.After(s.f.opts.StatsInterval, s, 0)
	}
}

func (f *Flow) publishStats() {
	for _, op := range f.ops {
		op.Stats().publish()
	}
}

// Advance fires every timer due at the clock's current time and runs the
// posted completions. It returns how many timers and posts ran. Flow
// goroutine only.
func (f *Flow) Advance() int {
	return f.Poll() + f.timers.Advance(f.Now())
}

// NextTimer returns when the earliest timer is due.
func (f *Flow) NextTimer() (int64, bool) { return f.timers.Next() }

// Post asks the flow's goroutine to run fn (at its next Advance, Poll or
// inside Run). Safe from any goroutine; it blocks while PostQueue calls
// are waiting, and fails once the flow is closed.
func (f *Flow) Post(fn func()) error {
	select {
	case <-f.done:
		return ErrClosed
	default:
	}
	select {
	case f.posts <- fn:
	case <-f.done:
		return ErrClosed
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
	if f.opts.Notify != nil {
		f.opts.Notify()
	}
	return nil
}

// Poll runs the posted functions waiting now. Flow goroutine only.
func (f *Flow) Poll() int {
	n := 0
	for {
		select {
		case fn := <-f.posts:
			fn()
			n++
		default:
			return n
		}
	}
}

// Run drives the flow on the calling goroutine until ctx ends: it opens
// the flow, runs posted functions as they come and fires timers when they
// are due (by the system clock's pace; with a FakeClock, drive the flow
// with Advance instead). On return the flow is drained and closed.
func (f *Flow) Run(ctx context.Context) error {
	if err := f.Open(); err != nil {
		return err
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		f.Advance()
		wait := time.Hour
		if next, ok := f.timers.Next(); ok {
			wait = time.Duration(next - f.Now())
		}
		if wait <= 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			f.Drain()
			return errors.Join(f.Close(), ctx.Err())
		case <-f.wake:
		case <-t.C:
		}
	}
}

// Drain runs what is posted and flushes every operator that holds events,
// upstream first, so what a buffer or window held reaches the sinks.
// Flow goroutine only.
func (f *Flow) Drain() {
	f.Poll()
	for _, op := range f.ops {
		if fl, ok := op.(Flusher); ok {
			fl.Flush()
		}
	}
}

// Close closes every operator (last added first) and publishes their
// final stats. Events still held are dropped: call Drain first to keep
// them. Flow goroutine only.
func (f *Flow) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for i := len(f.ops) - 1; i >= 0; i-- {
		if err := f.ops[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("operators: %s: close %s: %w", f.opts.Name, f.ops[i].Stats().Name, err))
		}
	}
	f.publishStats()
	close(f.done)
	return errors.Join(errs...)
}

// Stats returns a snapshot of every operator's stats, in the order they
// were added. Safe from any goroutine (it reads the histograms as last
// published, at most StatsInterval old).
func (f *Flow) Stats() []StatsSnapshot {
	f.opsMu.Lock()
	ops := f.ops
	f.opsMu.Unlock()
	out := make([]StatsSnapshot, 0, len(ops))
	for _, op := range ops {
		out = append(out, op.Stats().Snapshot())
	}
	return out
}

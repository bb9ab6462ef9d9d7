package operators

import (
	"slices"
	"time"
)

// This file holds the buffers: buffer (by count) and buffer_time (by
// time, with an optional count bound). Both turn a stream of T into a
// stream of []T.
//
// Ownership: every []T a buffer emits is a new slice that belongs to the
// receiver from then on: it may keep it, or change it. The batch of
// slices ([][]T) is the buffer's, reused, and valid only during the call,
// like every batch. Stats: In counts events, Out counts the slices
// emitted (not the events in them).

// CountBuffer groups every Size events into one []T, in arrival order;
// Flush emits the last, partial group.
//
//	groups, err := operators.NewBuffer[Tick]("by100", 100)
//
// It allocates one slice per group (of capacity Size), nothing per event.
// It is the operator behind Buffer (the name is taken by the function).
type CountBuffer[T any] struct {
	single[T, []T]
	size int
	err  error

	cur []T   // the group being filled, nil until its first event
	out [][]T // Push's output batch, reused
}

// NewBuffer returns a buffer that emits a []T of every size events.
// size must be > 0.
func NewBuffer[T any](name string, size int) (*CountBuffer[T], error) {
	o := newCountBuffer[T](name, size)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newCountBuffer[T any](name string, size int) *CountBuffer[T] {
	o := &CountBuffer[T]{size: size}
	o.init(name, "buffer", o)
	if size <= 0 {
		o.err = reactiveConfigError("buffer", name, "size must be > 0 (got %d)", size)
	}
	return o
}

// Open keeps the flow; it fails if the buffer was built with a bad setting.
func (o *CountBuffer[T]) Open(f *Flow) error {
	o.flow = f
	return o.err
}

// Size returns how many events make a group.
func (o *CountBuffer[T]) Size() int { return o.size }

// Pending returns how many events the partial group holds. Flow goroutine only.
func (o *CountBuffer[T]) Pending() int { return len(o.cur) }

// Push adds batch to the current group and emits, as one batch, every
// group it completes.
func (o *CountBuffer[T]) Push(batch []T) {
	if o.err != nil {
		reactiveReject(o.stats, len(batch))
		return
	}
	start := time.Now()
	n := len(batch)
	o.stats.In(n)
	out := o.out[:0]
	for len(batch) > 0 {
		if o.cur == nil {
			o.cur = make([]T, 0, o.size)
		}
		n := min(o.size-len(o.cur), len(batch))
		o.cur = append(o.cur, batch[:n]...)
		batch = batch[n:]
		if len(o.cur) == o.size {
			out = append(out, o.cur)
			o.cur = nil
		}
	}
	o.out = out
	o.stats.Observe(start, n)
	o.Out.Emit(out)
	clear(out)
}

// Flush emits the partial group, if any.
func (o *CountBuffer[T]) Flush() {
	if len(o.cur) == 0 {
		return
	}
	g := o.cur
	o.cur = nil
	o.Out.EmitOne(g)
}

// Buffer groups every n events of s into one []T (a new slice each, which
// the receiver owns); the flow's Drain emits the partial last group. An
// n <= 0 makes the flow's Open fail.
func Buffer[T any](s *Stream[T], n int) *Stream[[]T] {
	o := newCountBuffer[T](autoName(s.f, "buffer"), n)
	return attach(s, o, o, &o.Out)
}

// TimeBuffer emits, for each interval of length Span, the events that
// arrived in it (by the flow clock) as one []T, when the interval ends; an
// interval in which nothing arrived emits nothing. Intervals are aligned
// to the clock's epoch: [k·Span, (k+1)·Span). With Max > 0, a group is also
// emitted as soon as it holds Max events, and the interval goes on
// collecting into a new one.
//
//	perSecond, err := operators.NewBufferTime[Tick]("1s", time.Second, 0)
//
// It keeps one timer, set only while it holds events. It allocates one
// slice per group (cloned from a reused scratch buffer, so of exactly the
// group's length), nothing per event. Flush emits what it holds and ends
// the interval. It is the operator behind BufferTime.
type TimeBuffer[T any] struct {
	single[T, []T]
	span int64
	max  int // most events in a group; 0: no bound
	err  error

	held   []T   // the events of the open interval, reused
	due    int64 // end of the open interval, if open
	open   bool  // an interval is open (it has held events since it began)
	armed  bool  // a timer is in the flow's heap (for due, or for an earlier end)
	closed bool  // Close ran: the timer does nothing
	out    [][]T // Push's output batch, reused
}

// NewBufferTime returns a buffer that emits the events of each span as
// one []T, and (with maxCount > 0) every maxCount events sooner. span must
// be > 0 and maxCount >= 0.
func NewBufferTime[T any](name string, span time.Duration, maxCount int) (*TimeBuffer[T], error) {
	o := newTimeBuffer[T](name, span, maxCount)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newTimeBuffer[T any](name string, span time.Duration, maxCount int) *TimeBuffer[T] {
	o := &TimeBuffer[T]{span: int64(span), max: maxCount}
	o.init(name, "buffer_time", o)
	switch {
	case span <= 0:
		o.err = reactiveConfigError("buffer_time", name, "duration must be > 0 (got %s)", span)
	case maxCount < 0:
		o.err = reactiveConfigError("buffer_time", name, "max count must be >= 0 (0: no bound) (got %d)", maxCount)
	}
	return o
}

// Open keeps the flow; it fails if the buffer was built with a bad
// setting. Opened again (a reload that keeps the operator, on this flow or
// another), it sets the timer its open interval needs.
func (o *TimeBuffer[T]) Open(f *Flow) error {
	if o.flow != f {
		o.armed = false // a timer in another flow's heap is gone
	}
	o.flow, o.closed = f, false
	if o.open && !o.armed {
		o.armed = true
		o.flow.At(o.due, o, 0)
	}
	return o.err
}

// Close stops the buffer: its timer, when it fires, does nothing. The
// events it holds stay (a Drain before Close emits them).
func (o *TimeBuffer[T]) Close() error {
	o.closed = true
	return nil
}

// Span returns the interval's length.
func (o *TimeBuffer[T]) Span() time.Duration { return time.Duration(o.span) }

// Max returns the most events in a group (0: no bound).
func (o *TimeBuffer[T]) Max() int { return o.max }

// Pending returns how many events the open interval holds. Flow goroutine only.
func (o *TimeBuffer[T]) Pending() int { return len(o.held) }

// intervalEnd returns the end of the aligned interval holding t.
func (o *TimeBuffer[T]) intervalEnd(t int64) int64 {
	k := t / o.span
	if t%o.span < 0 {
		k-- // floor, for times before the epoch
	}
	return (k + 1) * o.span
}

// Push adds batch to the open interval (opening one if none is), and
// emits the groups that reach Max. If the open interval has ended but its
// timer has not fired yet, its group is emitted first.
func (o *TimeBuffer[T]) Push(batch []T) {
	if o.err != nil {
		reactiveReject(o.stats, len(batch))
		return
	}
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	now := o.flow.Now()
	out := o.out[:0]
	if o.open && now >= o.due {
		out = o.take(out)
		o.open = false
	}
	if !o.open {
		o.open, o.due = true, o.intervalEnd(now)
		if !o.armed {
			o.armed = true
			o.flow.At(o.due, o, 0)
		}
	}
	n := len(batch)
	for len(batch) > 0 {
		k := len(batch)
		if o.max > 0 {
			k = min(k, o.max-len(o.held))
		}
		o.held = append(o.held, batch[:k]...)
		batch = batch[k:]
		if len(o.held) == o.max {
			out = o.take(out)
		}
	}
	o.out = out
	o.stats.Observe(start, n)
	o.Out.Emit(out)
	clear(out)
}

// take appends a copy of the held events to out and empties held.
func (o *TimeBuffer[T]) take(out [][]T) [][]T {
	if len(o.held) == 0 {
		return out
	}
	out = append(out, slices.Clone(o.held))
	clear(o.held)
	o.held = o.held[:0]
	return out
}

// OnTimer ends the open interval and emits what it holds, or re-arms for
// the open interval's end if that is later (an interval opened after a
// Flush or a Push ended the one the timer was set for).
func (o *TimeBuffer[T]) OnTimer(int64, uint64) {
	o.armed = false
	if o.closed || !o.open {
		return
	}
	if o.flow.Now() < o.due {
		o.armed = true
		o.flow.At(o.due, o, 0)
		return
	}
	o.open = false
	o.emitHeld()
}

func (o *TimeBuffer[T]) emitHeld() {
	out := o.take(o.out[:0])
	o.out = out
	o.Out.Emit(out)
	clear(out)
}

// Flush emits what the open interval holds and ends it.
func (o *TimeBuffer[T]) Flush() {
	o.open = false
	o.emitHeld()
}

// BufferTime emits the events of s that arrived in each span-long interval
// as one []T (a new slice each, which the receiver owns), skipping empty
// intervals; with maxCount > 0 a group is emitted as soon as it holds
// maxCount events. A bad span or maxCount makes the flow's Open fail.
func BufferTime[T any](s *Stream[T], span time.Duration, maxCount int) *Stream[[]T] {
	o := newTimeBuffer[T](autoName(s.f, "buffer_time"), span, maxCount)
	return attach(s, o, o, &o.Out)
}

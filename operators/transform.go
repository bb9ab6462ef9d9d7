package operators

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Fallible stages
//
// A stage whose function can fail (TryMap, Retry, ConcurrentMap) emits its
// successes on its main output and its failures, as Failed[In], on its
// ErrorPort ("error"): that port is the stage's dead letter. Connect it to
// a sink that stores or logs failures, or to a CatchError that turns some
// of them back into events (and dead-letters the rest on its own
// DeadLetterPort). A failure sent to an error port nothing reads is lost,
// but still counted in the stage's Stats.Errors.
//
//	parsed, failed := operators.TryMapTo(src.Stream(), parse)
//	fixed, dead := operators.Catch(failed, fallback)
//	parsed.Merge(fixed).Subscribe(use)
//	dead.Subscribe(logFailure)

// Port names of the fallible stages.
const (
	// ErrorPort is the output of a fallible stage's failures (Failed[In]).
	ErrorPort = "error"
	// DeadLetterPort is the output of what a CatchError did not recover.
	DeadLetterPort = "dead"
)

// Failed is an event a stage could not process: the event as the stage
// got it, the last error, how many times the stage tried it, and the
// stage's node name.
type Failed[T any] struct {
	Event    T
	Err      error
	Attempts int
	Node     string
}

// Error makes a Failed an error, for logs: it names the node, the
// attempts and the last error.
func (f Failed[T]) Error() string {
	return fmt.Sprintf("operators: %s: failed after %d attempt(s): %v", f.Node, f.Attempts, f.Err)
}

// Unwrap returns Err.
func (f Failed[T]) Unwrap() error { return f.Err }

// ---- flat_map ----

// FlatMap emits, for each event, the events Fn appends to dst (zero, one
// or many; order kept).
//
//	words := operators.NewFlatMap("words", func(dst []string, line string) []string {
//		return append(dst, strings.Fields(line)...)
//	})
//
// Fn appends to dst and returns it, like strconv.AppendInt: the whole
// batch's output goes into one buffer the operator reuses, so a Fn that
// appends values allocates nothing once the buffer has grown. Fn must not
// keep dst.
type FlatMap[In, Out any] struct {
	single[In, Out]
	Fn  func(dst []Out, v In) []Out
	buf []Out
}

// NewFlatMap returns a flat_map node.
func NewFlatMap[In, Out any](name string, fn func(dst []Out, v In) []Out) *FlatMap[In, Out] {
	o := &FlatMap[In, Out]{Fn: fn}
	o.init(name, "flat_map", o)
	return o
}

// Push expands batch into the reused buffer and emits it as one batch.
func (o *FlatMap[In, Out]) Push(batch []In) {
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	for i := range batch {
		buf = o.Fn(buf, batch[i])
	}
	o.buf = buf
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

// FlatMap replaces each event by the events fn appends to dst (same type;
// FlatMapTo changes it).
func (s *Stream[T]) FlatMap(fn func(dst []T, v T) []T) *Stream[T] {
	o := NewFlatMap(autoName(s.f, "flat_map"), fn)
	return attach(s, o, o, &o.Out)
}

// FlatMapTo flat-maps a stream of T to a stream of U.
func FlatMapTo[T, U any](s *Stream[T], fn func(dst []U, v T) []U) *Stream[U] {
	o := NewFlatMap(autoName(s.f, "flat_map"), fn)
	return attach(s, o, o, &o.Out)
}

// ---- try map ----

// TryMap emits Fn(e) for every e for which Fn succeeds (order kept), and
// a Failed[In] (Attempts 1) on ErrorPort for every one for which it fails.
//
//	parse := operators.NewTryMap("parse", func(b []byte) (Order, error) { … })
//	p.AddNode("parse", parse).Connect("input", "parse").
//		Connect("parse", "output").Connect("parse.error", "dead-letters")
//
// Fn runs on the flow's goroutine; for slow or blocking functions use
// NewConcurrentMap, to try again later use NewRetry.
type TryMap[In, Out any] struct {
	single[In, Out]
	Errors Outlet[Failed[In]] // ErrorPort
	Fn     func(In) (Out, error)
	buf    []Out
	errBuf []Failed[In]
}

// NewTryMap returns a fallible map node.
func NewTryMap[In, Out any](name string, fn func(In) (Out, error)) *TryMap[In, Out] {
	o := &TryMap[In, Out]{Fn: fn}
	o.init(name, "try_map", o)
	o.addPort(ErrorPort, &o.Errors)
	return o
}

// Push maps batch, then emits the successes as one batch and the
// failures as another.
func (o *TryMap[In, Out]) Push(batch []In) {
	start := time.Now()
	o.stats.In(len(batch))
	buf, errBuf := o.buf[:0], o.errBuf[:0]
	for i := range batch {
		v, err := o.Fn(batch[i])
		if err != nil {
			errBuf = append(errBuf, Failed[In]{Event: batch[i], Err: err, Attempts: 1, Node: o.stats.Name})
			continue
		}
		buf = append(buf, v)
	}
	o.buf, o.errBuf = buf, errBuf
	o.stats.Errors(len(errBuf))
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	o.Errors.Emit(errBuf)
	clear(buf)
	clear(errBuf)
}

// TryMapTo adds a TryMap downstream of s: it returns the stream of the
// successes and the stream of the failures.
func TryMapTo[In, Out any](s *Stream[In], fn func(In) (Out, error)) (ok *Stream[Out], failed *Stream[Failed[In]]) {
	o := NewTryMap(autoName(s.f, "try_map"), fn)
	return attach(s, o, o, &o.Out), &Stream[Failed[In]]{f: s.f, out: &o.Errors}
}

// ---- catch_error ----

// CatchError takes a fallible stage's failures and recovers them: for
// each, Fn returns an event to emit instead (of the stage's output type)
// and true, or false, and the failure goes on to DeadLetterPort.
//
//	c := operators.NewCatchError("fallback", func(f operators.Failed[[]byte]) (Order, bool) {
//		return Order{Raw: f.Event}, errors.Is(f.Err, errUnknownField)
//	})
//	p.AddNode("c", c).Connect("parse.error", "c").Connect("c", "all").Connect("c.dead", "dlq")
//
// A nil Fn recovers nothing: every failure is dead-lettered. Recovered
// events count as Out, dead-lettered ones as Errors. To dead-letter
// without recovering anything, connect the error port straight to a Sink.
type CatchError[In, Out any] struct {
	single[Failed[In], Out]
	Dead    Outlet[Failed[In]] // DeadLetterPort
	Fn      func(Failed[In]) (Out, bool)
	buf     []Out
	deadBuf []Failed[In]
}

// NewCatchError returns a catch_error node.
func NewCatchError[In, Out any](name string, fn func(Failed[In]) (Out, bool)) *CatchError[In, Out] {
	o := &CatchError[In, Out]{Fn: fn}
	o.init(name, "catch_error", o)
	o.addPort(DeadLetterPort, &o.Dead)
	return o
}

// Push recovers what Fn can, then emits the recovered events as one batch
// and the rest, on DeadLetterPort, as another.
func (o *CatchError[In, Out]) Push(batch []Failed[In]) {
	start := time.Now()
	o.stats.In(len(batch))
	buf, dead := o.buf[:0], o.deadBuf[:0]
	for i := range batch {
		if o.Fn != nil {
			if v, ok := o.Fn(batch[i]); ok {
				buf = append(buf, v)
				continue
			}
		}
		dead = append(dead, batch[i])
	}
	o.buf, o.deadBuf = buf, dead
	o.stats.Errors(len(dead))
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	o.Dead.Emit(dead)
	clear(buf)
	clear(dead)
}

// Catch adds a CatchError downstream of a stream of failures: it returns
// the recovered events and the dead letters.
func Catch[In, Out any](failed *Stream[Failed[In]], fn func(Failed[In]) (Out, bool)) (recovered *Stream[Out], dead *Stream[Failed[In]]) {
	o := NewCatchError(autoName(failed.f, "catch_error"), fn)
	return attach(failed, o, o, &o.Out), &Stream[Failed[In]]{f: failed.f, out: &o.Dead}
}

// ---- retry ----

// RetryOptions configures a Retry. Every field is optional.
type RetryOptions struct {
	// MaxAttempts is how many times an event is tried, the first time
	// included. Default 3; 1 means no retry.
	MaxAttempts int
	// Initial is the wait before the second attempt. Default 100ms.
	Initial time.Duration
	// Max caps every wait. Default 30s; at least Initial.
	Max time.Duration
	// Multiplier scales the wait after each failed retry. Default 2; at
	// least 1.
	Multiplier float64
	// Jitter, in [0, 1], randomizes each wait: a wait d becomes
	// d×(1−Jitter×r) with r from Rand, so 1 is "full jitter" (anywhere in
	// [0, d]) and 0 (the default) none.
	Jitter float64
	// Rand returns r in [0, 1). Default math/rand/v2.Float64; tests pass
	// their own.
	Rand func() float64
	// MaxPending bounds the events held waiting for a retry. An event
	// that fails while MaxPending are held is not held: it goes to the
	// error port at once. Default 1024.
	MaxPending int
}

// EnsureDefaults fills every zero field with its default.
func (o *RetryOptions) EnsureDefaults() {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 3
	}
	if o.Initial == 0 {
		o.Initial = 100 * time.Millisecond
	}
	if o.Max == 0 {
		o.Max = max(30*time.Second, o.Initial)
	}
	if o.Multiplier == 0 {
		o.Multiplier = 2
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.MaxPending == 0 {
		o.MaxPending = 1024
	}
}

// Validate reports the first invalid field (call EnsureDefaults first).
func (o *RetryOptions) Validate() error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("operators: RetryOptions: %w", err)
	}
	return nil
}

func (o *RetryOptions) validate() error {
	switch {
	case o.MaxAttempts < 1:
		return fmt.Errorf("option MaxAttempts %d: must be at least 1 (0 means 3)", o.MaxAttempts)
	case o.Initial < 0:
		return fmt.Errorf("option Initial %v: must not be negative", o.Initial)
	case o.Max < o.Initial:
		return fmt.Errorf("option Max %v is below Initial %v: raise Max", o.Max, o.Initial)
	case o.Multiplier < 1:
		return fmt.Errorf("option Multiplier %v: must be at least 1 (0 means 2)", o.Multiplier)
	case o.Jitter < 0 || o.Jitter > 1:
		return fmt.Errorf("option Jitter %v: must be in [0, 1]", o.Jitter)
	case o.MaxPending < 0:
		return fmt.Errorf("option MaxPending %d: must not be negative (0 means 1024)", o.MaxPending)
	}
	return nil
}

// Retry emits Fn(e) for each event, trying a failing event again after
// exponentially growing waits (flow timers), up to MaxAttempts; then it
// sends a Failed[In] to ErrorPort.
//
//	enrich, err := operators.NewRetry("enrich", lookup, operators.RetryOptions{
//		MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5,
//	})
//
// The waits are Initial, Initial×Multiplier, … capped at Max, each
// jittered; they are flow timers, so a test moves a FakeClock and calls
// Flow.Advance. Each failing event is held on its own: events that do
// not fail are not held back by it, so a retried event leaves after the
// events that came behind it (order is kept only among the events that
// succeed at their first attempt in the same batch), and held events
// leave in the order of their retries' timers. Fn runs on the flow's
// goroutine (and so does the retry): it must not block; for I/O, retry
// inside a ConcurrentMap's function instead.
//
// Flush tries every held event once more, now, and sends those that fail
// again to ErrorPort; Close drops what is still held (counted Dropped).
type Retry[In, Out any] struct {
	single[In, Out]
	Errors Outlet[Failed[In]] // ErrorPort
	fn     func(In) (Out, error)
	opts   RetryOptions
	err    error // a configuration error (fluent RetryMap only): Open returns it

	// Flow goroutine only.
	slots  []retrySlot[In] // held events; a timer's arg is gen<<32 | index
	free   []uint32        // indexes of unused slots
	held   int
	buf    []Out
	errBuf []Failed[In]
}

// retrySlot is one held event. gen changes each time the slot is freed,
// so a timer set for a previous occupant does nothing.
type retrySlot[In any] struct {
	v        In
	attempts int
	wait     time.Duration // the last un-jittered wait
	gen      uint32
	used     bool
}

// NewRetry returns a retry node, or an error naming the option to fix.
func NewRetry[In, Out any](name string, fn func(In) (Out, error), opts RetryOptions) (*Retry[In, Out], error) {
	o := newRetry(name, fn, opts)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// newRetry returns a retry that keeps its configuration error, if any.
func newRetry[In, Out any](name string, fn func(In) (Out, error), opts RetryOptions) *Retry[In, Out] {
	opts.EnsureDefaults()
	o := &Retry[In, Out]{fn: fn, opts: opts}
	o.init(name, "retry", o)
	o.addPort(ErrorPort, &o.Errors)
	if err := opts.validate(); err != nil {
		o.err = fmt.Errorf("operators: retry %q: %w", name, err)
	} else if fn == nil {
		o.err = fmt.Errorf("operators: retry %q: fn is nil", name)
	}
	return o
}

// Open keeps the flow; it fails if the retry was built (by RetryMap) with
// bad options.
func (o *Retry[In, Out]) Open(f *Flow) error {
	o.flow = f
	return o.err
}

// Options returns the options in effect (defaults filled in).
func (o *Retry[In, Out]) Options() RetryOptions { return o.opts }

// Held returns how many events wait for a retry.
func (o *Retry[In, Out]) Held() int { return o.held }

// Push tries each event of batch once; the successes leave as one batch,
// the failures are held for a retry (or, out of attempts or room, leave
// on ErrorPort as another batch).
func (o *Retry[In, Out]) Push(batch []In) {
	if o.err != nil {
		o.stats.In(len(batch))
		o.stats.Errors(len(batch))
		return
	}
	if o.flow == nil {
		panic(fmt.Sprintf("operators: retry %q: Push before Open (open the flow first)", o.stats.Name))
	}
	start := time.Now()
	o.stats.In(len(batch))
	o.buf, o.errBuf = o.buf[:0], o.errBuf[:0]
	for i := range batch {
		v, err := o.fn(batch[i])
		if err != nil {
			o.failed(batch[i], 1, err)
			continue
		}
		o.buf = append(o.buf, v)
	}
	o.stats.Observe(start, len(batch))
	o.emit()
}

// failed holds v for another attempt, or queues it for ErrorPort.
func (o *Retry[In, Out]) failed(v In, attempts int, err error) {
	if attempts >= o.opts.MaxAttempts || o.held >= o.opts.MaxPending {
		o.errBuf = append(o.errBuf, Failed[In]{Event: v, Err: err, Attempts: attempts, Node: o.stats.Name})
		return
	}
	var idx uint32
	if n := len(o.free); n > 0 {
		idx = o.free[n-1]
		o.free = o.free[:n-1]
	} else {
		o.slots = append(o.slots, retrySlot[In]{})
		idx = uint32(len(o.slots) - 1)
	}
	s := &o.slots[idx]
	s.v, s.attempts, s.wait, s.used = v, attempts, o.opts.Initial, true
	o.held++
	o.arm(idx)
}

// arm sets the timer for slot idx's next attempt, s.wait from now, jittered.
func (o *Retry[In, Out]) arm(idx uint32) {
	s := &o.slots[idx]
	d := s.wait
	if o.opts.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - o.opts.Jitter*o.opts.Rand()))
	}
	o.flow.After(d, o, uint64(s.gen)<<32|uint64(idx))
}

// release frees slot idx.
func (o *Retry[In, Out]) release(idx uint32) {
	s := &o.slots[idx]
	*s = retrySlot[In]{gen: s.gen + 1}
	o.free = append(o.free, idx)
	o.held--
}

// OnTimer tries a held event again. Flow goroutine only (Timed).
func (o *Retry[In, Out]) OnTimer(_ int64, arg uint64) {
	idx, gen := uint32(arg), uint32(arg>>32)
	if int(idx) >= len(o.slots) {
		return
	}
	s := &o.slots[idx]
	if !s.used || s.gen != gen {
		return // the slot was flushed or closed since
	}
	start := time.Now()
	o.buf, o.errBuf = o.buf[:0], o.errBuf[:0]
	s.attempts++
	v, err := o.fn(s.v)
	switch {
	case err == nil:
		o.buf = append(o.buf, v)
		o.release(idx)
	case s.attempts >= o.opts.MaxAttempts:
		o.errBuf = append(o.errBuf, Failed[In]{Event: s.v, Err: err, Attempts: s.attempts, Node: o.stats.Name})
		o.release(idx)
	default:
		s.wait = min(time.Duration(float64(s.wait)*o.opts.Multiplier), o.opts.Max)
		o.arm(idx)
	}
	o.stats.Observe(start, 1)
	o.emit()
}

// emit hands buf and errBuf downstream.
func (o *Retry[In, Out]) emit() {
	o.stats.Errors(len(o.errBuf))
	o.Out.Emit(o.buf)
	o.Errors.Emit(o.errBuf)
	clear(o.buf)
	clear(o.errBuf)
}

// Flush tries every held event once more, now (in slot order), emits the
// successes and sends the failures to ErrorPort.
func (o *Retry[In, Out]) Flush() {
	if o.held == 0 {
		return
	}
	start := time.Now()
	o.buf, o.errBuf = o.buf[:0], o.errBuf[:0]
	n := o.held
	for i := range o.slots {
		s := &o.slots[i]
		if !s.used {
			continue
		}
		s.attempts++
		if v, err := o.fn(s.v); err == nil {
			o.buf = append(o.buf, v)
		} else {
			o.errBuf = append(o.errBuf, Failed[In]{Event: s.v, Err: err, Attempts: s.attempts, Node: o.stats.Name})
		}
		o.release(uint32(i))
	}
	o.stats.Observe(start, n)
	o.emit()
}

// Close drops the held events (counted Dropped).
func (o *Retry[In, Out]) Close() error {
	if o.held > 0 {
		o.stats.Dropped(o.held)
		for i := range o.slots {
			if o.slots[i].used {
				o.release(uint32(i))
			}
		}
	}
	return nil
}

// RetryMap adds a Retry downstream of s: it returns the stream of the
// successes and the stream of the events that failed every attempt. With
// invalid opts the flow's Open fails with NewRetry's error (and events
// that reach the retry anyway count as Errors).
func RetryMap[In, Out any](s *Stream[In], fn func(In) (Out, error), opts RetryOptions) (ok *Stream[Out], failed *Stream[Failed[In]]) {
	o := newRetry(autoName(s.f, "retry"), fn, opts)
	return attach(s, o, o, &o.Out), &Stream[Failed[In]]{f: s.f, out: &o.Errors}
}

// ---- concurrent map ----

// ConcurrencyOptions configures a ConcurrentMap. Every field is optional.
type ConcurrencyOptions struct {
	// Concurrency is how many worker goroutines call fn. Default
	// GOMAXPROCS. With Adaptive it is how many the pool starts with:
	// default Adaptive.Min, within [Adaptive.Min, Adaptive.Max].
	Concurrency int
	// Ordered emits the results in input order: a result that completes
	// early waits, in a reorder buffer, for the ones before it (failures
	// too keep their place among failures). Default false: results leave
	// as they complete.
	Ordered bool
	// MaxInFlight bounds the events handed to the workers and not yet
	// emitted (waiting for a worker, running, or, when Ordered, waiting
	// for an earlier one). When it is reached, Push blocks the flow's
	// goroutine, emitting completions, until one leaves: that is the
	// backpressure. Default 2×Concurrency; at least Concurrency. With
	// Adaptive: default 2×Adaptive.Max, or Adaptive.Max-1+Adaptive.High if
	// that is more; at least both (so the queue can reach High).
	MaxInFlight int
	// Adaptive, when set, sizes the pool by its queue, between
	// Adaptive.Min and Adaptive.Max workers (AdaptiveConcurrency). Default
	// nil: Concurrency workers, always.
	Adaptive *AdaptiveConcurrency
}

// MaxWorkers bounds AdaptiveConcurrency.Max.
const MaxWorkers = 1024

// AdaptiveConcurrency makes a ConcurrentMap's pool grow and shrink with
// its queue: the events handed to the map that wait for a worker (the
// in-flight ones that are neither running nor done). Every Every, on the
// flow's clock (a flow timer, so a FakeClock drives it), the map samples
// the queue's length:
//
//   - at or above High at two samples in a row (a whole period): one
//     more worker, up to Max, and one more each period it stays there;
//   - at or below Low at Quiet+1 samples in a row (Quiet whole periods):
//     one worker fewer, down to Min, and one more each Quiet periods it
//     stays there; the worker that goes finishes its event first (the
//     next one to finish an event exits, or an idle one);
//   - otherwise nothing changes. Between Low and High, or swinging across
//     a mark between two samples, the pool keeps its size: that is the
//     hysteresis that stops it from flapping.
//
// Resizing loses, repeats and reorders nothing: the queue and, when
// Ordered, the reorder buffer do not depend on the pool's size, and
// MaxInFlight bounds the events in flight whatever it is. While Push
// waits for room in a full in-flight window it samples too (a flow
// stuck in Push runs no timers, and that is when a pool must grow). A
// map at Min with nothing in flight stops sampling until its next Push.
//
// The map's Stats show the pool: gauges "workers" (its size now),
// "queue" (the last sample), "workers_min", "workers_max", "queue_high"
// (the mark in effect) and "queue_low"; counters "scale_ups" and
// "scale_downs".
type AdaptiveConcurrency struct {
	// Min is the fewest workers. Default 1.
	Min int
	// Max is the most workers: at least Min, at most MaxWorkers. Required.
	Max int
	// High is the queue length at or above which the pool grows. Default
	// 0: the number of workers now (grow while more events wait than
	// there are workers to take them).
	High int
	// Low is the queue length at or below which the pool shrinks:
	// below High (below Min when High is 0). Default 0: an empty queue.
	Low int
	// Every is the sampling period. Default 100ms; at least 1ms.
	Every time.Duration
	// Quiet is how many periods the queue must stay at or below Low
	// before one worker goes. Default 5.
	Quiet int
}

// EnsureDefaults fills every zero field with its default.
func (a *AdaptiveConcurrency) EnsureDefaults() {
	if a.Min == 0 {
		a.Min = 1
	}
	if a.Every == 0 {
		a.Every = 100 * time.Millisecond
	}
	if a.Quiet == 0 {
		a.Quiet = 5
	}
}

func (a *AdaptiveConcurrency) validate() error {
	switch {
	case a.Min < 1:
		return fmt.Errorf("option Adaptive.Min %d: must be at least 1 (0 means 1)", a.Min)
	case a.Max < a.Min:
		return fmt.Errorf("option Adaptive.Max %d is below Adaptive.Min %d: raise Max", a.Max, a.Min)
	case a.Max > MaxWorkers:
		return fmt.Errorf("option Adaptive.Max %d: must be at most %d", a.Max, MaxWorkers)
	case a.High < 0:
		return fmt.Errorf("option Adaptive.High %d: must not be negative (0 means the number of workers)", a.High)
	case a.Low < 0:
		return fmt.Errorf("option Adaptive.Low %d: must not be negative", a.Low)
	case a.High > 0 && a.Low >= a.High:
		return fmt.Errorf("option Adaptive.Low %d: must be below Adaptive.High %d", a.Low, a.High)
	case a.High == 0 && a.Low >= a.Min:
		return fmt.Errorf("option Adaptive.Low %d: must be below Adaptive.Min %d (High 0 means the number of workers, so it can be as low as Min); set High", a.Low, a.Min)
	case a.Every < time.Millisecond:
		return fmt.Errorf("option Adaptive.Every %v: must be at least 1ms (0 means 100ms)", a.Every)
	case a.Quiet < 1:
		return fmt.Errorf("option Adaptive.Quiet %d: must be at least 1 (0 means 5)", a.Quiet)
	}
	return nil
}

// EnsureDefaults fills every zero field with its default (Adaptive's
// too).
func (o *ConcurrencyOptions) EnsureDefaults() {
	if a := o.Adaptive; a != nil {
		a.EnsureDefaults()
		if o.Concurrency == 0 {
			o.Concurrency = a.Min
		}
		if o.MaxInFlight == 0 {
			o.MaxInFlight = max(2*a.Max, a.Max-1+a.High)
		}
		return
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 2 * o.Concurrency
	}
}

// Validate reports the first invalid field (call EnsureDefaults first).
func (o *ConcurrencyOptions) Validate() error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("operators: ConcurrencyOptions: %w", err)
	}
	return nil
}

func (o *ConcurrencyOptions) validate() error {
	if a := o.Adaptive; a != nil {
		if err := a.validate(); err != nil {
			return err
		}
		switch {
		case o.Concurrency < a.Min || o.Concurrency > a.Max:
			return fmt.Errorf("option Concurrency %d: with Adaptive, must be within Min %d and Max %d (0 means Min)", o.Concurrency, a.Min, a.Max)
		case o.MaxInFlight < a.Max:
			return fmt.Errorf("option MaxInFlight %d is below Adaptive.Max %d: raise MaxInFlight (0 means 2×Max)", o.MaxInFlight, a.Max)
		case o.MaxInFlight < a.Max-1+a.High:
			return fmt.Errorf("option MaxInFlight %d is below Adaptive.Max-1+Adaptive.High = %d: the queue could not reach High with Max-1 workers busy; raise MaxInFlight or lower High", o.MaxInFlight, a.Max-1+a.High)
		}
		return nil
	}
	switch {
	case o.Concurrency < 1:
		return fmt.Errorf("option Concurrency %d: must be at least 1 (0 means GOMAXPROCS)", o.Concurrency)
	case o.MaxInFlight < o.Concurrency:
		return fmt.Errorf("option MaxInFlight %d is below Concurrency %d: raise MaxInFlight (0 means 2×Concurrency)", o.MaxInFlight, o.Concurrency)
	}
	return nil
}

// ConcurrentMap runs fn on Concurrency worker goroutines, at most
// MaxInFlight events at a time, and emits the results on the flow's
// goroutine, in input order or as they complete; failures go to
// ErrorPort as Failed[In].
//
//	geo, err := operators.NewConcurrentMap("geo", func(ctx context.Context, ip string) (City, error) {
//		return lookup(ctx, ip)
//	}, operators.ConcurrencyOptions{Concurrency: 16, Ordered: true})
//
// Results come back through Flow.Post: a flow driven by hand emits them
// at its next Advance or Poll (or when Push blocks on a full in-flight
// window, or at Flush). Open starts the workers; Flush waits for every
// event in flight and emits it; Close cancels the context fn gets, stops
// the workers and waits for the calls still running (so fn should honour
// ctx), dropping their results (counted Dropped). Its latency histogram
// records, per event, the time from the hand-off to a worker until the
// result is back on the flow's goroutine.
//
// With ConcurrencyOptions.Adaptive the pool grows and shrinks with its
// queue, between Adaptive.Min and Adaptive.Max workers, sampled on flow
// timers (AdaptiveConcurrency):
//
//	geo, err := operators.NewConcurrentMap("geo", lookup, operators.ConcurrencyOptions{
//		Ordered:  true,
//		Adaptive: &operators.AdaptiveConcurrency{Min: 2, Max: 32, Every: 50 * time.Millisecond},
//	})
type ConcurrentMap[In, Out any] struct {
	single[In, Out]
	Errors Outlet[Failed[In]] // ErrorPort
	fn     func(context.Context, In) (Out, error)
	opts   ConcurrencyOptions
	err    error // a configuration error (fluent MapConcurrent only): Open returns it

	// Flow goroutine only.
	next     uint64              // seq of the next event handed out
	head     uint64              // Ordered: seq of the next result to emit
	inFlight int                 // handed out, not yet emitted
	reorder  []cmResult[In, Out] // Ordered: slot seq%MaxInFlight
	buf      []Out
	errBuf   []Failed[In]
	state    int         // cmNew, cmOpen, cmClosed
	ad       *cmAdaptive // Adaptive's controller; nil for a fixed pool

	// Made by Open before the workers start; then shared. Workers receive
	// from jobs and send on results, which has room for every event in
	// flight, so a worker never blocks on it; notify (capacity 1) tells
	// the poster goroutine to Post drain.
	jobs    chan cmJob[In]
	results chan cmResult[In, Out]
	notify  chan struct{}
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	drainFn func()               // o.drain, made once so Post allocates nothing
	posted  atomic.Pointer[Flow] // the flow the poster posts to (set by Open)
}

const (
	cmNew = iota
	cmOpen
	cmClosed
)

type cmJob[In any] struct {
	seq   uint64
	v     In
	start time.Time
}

type cmResult[In, Out any] struct {
	seq   uint64
	v     In
	out   Out
	err   error
	start time.Time
	ready bool // Ordered: the reorder slot holds a result
}

// NewConcurrentMap returns a concurrent map node, or an error naming the
// option to fix.
func NewConcurrentMap[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ConcurrencyOptions) (*ConcurrentMap[In, Out], error) {
	o := newConcurrentMap(name, fn, opts)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// newConcurrentMap returns a concurrent map that keeps its configuration
// error, if any.
func newConcurrentMap[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ConcurrencyOptions) *ConcurrentMap[In, Out] {
	if opts.Adaptive != nil {
		a := *opts.Adaptive // EnsureDefaults must not write the caller's
		opts.Adaptive = &a
	}
	opts.EnsureDefaults()
	o := &ConcurrentMap[In, Out]{fn: fn, opts: opts}
	o.init(name, "concurrent_map", o)
	o.addPort(ErrorPort, &o.Errors)
	if err := opts.validate(); err != nil {
		o.err = fmt.Errorf("operators: concurrent map %q: %w", name, err)
	} else if fn == nil {
		o.err = fmt.Errorf("operators: concurrent map %q: fn is nil", name)
	} else if opts.Adaptive != nil {
		o.ad = newCMAdaptive(o.stats, *opts.Adaptive, opts.Concurrency)
	}
	return o
}

// Options returns the options in effect (defaults filled in). Its
// Adaptive, if set, is the map's copy: do not change it.
func (o *ConcurrentMap[In, Out]) Options() ConcurrencyOptions { return o.opts }

// Workers returns the pool's size: Concurrency, or with Adaptive the
// size the controller chose last (workers told to retire that are still
// finishing an event are not counted). Flow goroutine only.
func (o *ConcurrentMap[In, Out]) Workers() int {
	if o.ad != nil {
		return o.ad.workers
	}
	return o.opts.Concurrency
}

// InFlight returns how many events were handed out and not yet emitted.
// Flow goroutine only.
func (o *ConcurrentMap[In, Out]) InFlight() int { return o.inFlight }

// Open keeps the flow and starts the workers. A node a reloaded
// pipeline keeps is opened again with the new flow: its workers stay, its
// results go to the new flow from then on.
func (o *ConcurrentMap[In, Out]) Open(f *Flow) error {
	o.flow = f
	if o.err != nil {
		return o.err
	}
	o.posted.Store(f)
	if o.state != cmNew {
		if o.state == cmOpen && o.ad != nil {
			o.arm() // sample on the new flow's timers; the old flow's one is stale
		}
		return nil
	}
	o.state = cmOpen
	n := o.opts.MaxInFlight
	if o.ad != nil {
		o.jobs = make(chan cmJob[In], n+o.opts.Adaptive.Max) // room for wake-ups too
	} else {
		o.jobs = make(chan cmJob[In], n)
	}
	o.results = make(chan cmResult[In, Out], n)
	o.notify = make(chan struct{}, 1)
	o.stop = make(chan struct{})
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.drainFn = o.drain
	if o.opts.Ordered {
		o.reorder = make([]cmResult[In, Out], n)
	}
	o.wg.Add(o.opts.Concurrency)
	if o.ad != nil {
		for range o.opts.Concurrency {
			go o.workAdaptive()
		}
		o.ad.setGauges()
		o.arm()
	} else {
		for range o.opts.Concurrency {
			go o.work()
		}
	}
	go o.post()
	return nil
}

// work is a worker goroutine: it runs fn on each job until jobs closes,
// skipping the jobs left once the operator is closed.
func (o *ConcurrentMap[In, Out]) work() {
	defer o.wg.Done()
	for j := range o.jobs {
		o.do(j)
	}
}

// do is a worker's body for one job (work, workAdaptive): it runs fn on j
// and hands the result back (nothing once closed).
func (o *ConcurrentMap[In, Out]) do(j cmJob[In]) {
	if o.ctx.Err() != nil {
		return
	}
	out, err := o.fn(o.ctx, j.v)
	o.results <- cmResult[In, Out]{seq: j.seq, v: j.v, out: out, err: err, start: j.start}
	select {
	case o.notify <- struct{}{}:
	default: // a drain is already due
	}
}

// post is the poster goroutine: it asks the flow to drain the results
// when a worker says there are some. It is apart from the workers so that
// Close can wait for them while a Post blocks on a full queue.
func (o *ConcurrentMap[In, Out]) post() {
	for {
		select {
		case <-o.notify:
			f := o.posted.Load()
			if f.Post(o.drainFn) != nil && o.posted.Load() == f {
				return // the flow is closed, and so are we (or soon)
			}
		case <-o.stop:
			return
		}
	}
}

// Push hands each event of batch to the workers; when MaxInFlight are in
// flight it waits for a result first. It emits the results that are back
// when it returns.
func (o *ConcurrentMap[In, Out]) Push(batch []In) {
	if o.err != nil {
		o.stats.In(len(batch))
		o.stats.Errors(len(batch))
		return
	}
	switch o.state {
	case cmNew:
		panic(fmt.Sprintf("operators: concurrent map %q: Push before Open (open the flow first)", o.stats.Name))
	case cmClosed:
		o.stats.In(len(batch))
		o.stats.Dropped(len(batch))
		return
	}
	o.stats.In(len(batch))
	if o.ad != nil && !o.ad.ticking {
		o.arm()
	}
	for i := range batch {
		for o.inFlight >= o.opts.MaxInFlight {
			if o.ad != nil {
				o.sampleIfDue() // no timer runs while Push waits
			}
			o.take(<-o.results)
		}
		o.jobs <- cmJob[In]{seq: o.next, v: batch[i], start: time.Now()}
		o.next++
		o.inFlight++
	}
	o.drain()
}

// drain takes the results that are back, without waiting, and emits them.
func (o *ConcurrentMap[In, Out]) drain() {
	if o.state != cmOpen {
		return
	}
	for {
		select {
		case r := <-o.results:
			o.take(r)
		default:
			o.emit()
			return
		}
	}
}

// take files one result: into buf or errBuf, or, Ordered, into the
// reorder buffer, moving out the results that are now next in line.
func (o *ConcurrentMap[In, Out]) take(r cmResult[In, Out]) {
	o.stats.Observe(r.start, 1)
	if !o.opts.Ordered {
		o.inFlight--
		o.file(&r)
		return
	}
	n := uint64(len(o.reorder))
	r.ready = true
	o.reorder[r.seq%n] = r
	for {
		s := &o.reorder[o.head%n]
		if !s.ready {
			return
		}
		o.file(s)
		*s = cmResult[In, Out]{}
		o.head++
		o.inFlight--
	}
}

func (o *ConcurrentMap[In, Out]) file(r *cmResult[In, Out]) {
	if r.err != nil {
		o.errBuf = append(o.errBuf, Failed[In]{Event: r.v, Err: r.err, Attempts: 1, Node: o.stats.Name})
		return
	}
	o.buf = append(o.buf, r.out)
}

// emit hands buf and errBuf downstream.
func (o *ConcurrentMap[In, Out]) emit() {
	buf, errBuf := o.buf, o.errBuf
	o.stats.Errors(len(errBuf))
	o.Out.Emit(buf)
	o.Errors.Emit(errBuf)
	clear(buf)
	clear(errBuf)
	o.buf, o.errBuf = buf[:0], errBuf[:0]
}

// Flush waits for every event in flight and emits its result.
func (o *ConcurrentMap[In, Out]) Flush() {
	if o.state != cmOpen {
		return
	}
	for o.inFlight > 0 {
		o.take(<-o.results)
	}
	o.emit()
}

// Close cancels fn's context, stops the workers and waits for them; the
// events still in flight are dropped.
func (o *ConcurrentMap[In, Out]) Close() error {
	if o.state != cmOpen {
		o.state = cmClosed
		return nil
	}
	o.state = cmClosed
	o.cancel()
	close(o.jobs)
	o.wg.Wait()
	close(o.stop)
	o.stats.Dropped(o.inFlight)
	o.inFlight = 0
	clear(o.reorder)
	if o.ad != nil {
		o.ad.closed()
	}
	return nil
}

// MapConcurrent adds a ConcurrentMap downstream of s: it returns the
// stream of the results and the stream of the failures. With invalid
// opts the flow's Open fails with NewConcurrentMap's error (and events
// that reach the map anyway count as Errors).
func MapConcurrent[In, Out any](s *Stream[In], fn func(context.Context, In) (Out, error), opts ConcurrencyOptions) (ok *Stream[Out], failed *Stream[Failed[In]]) {
	o := newConcurrentMap(autoName(s.f, "concurrent_map"), fn, opts)
	return attach(s, o, o, &o.Out), &Stream[Failed[In]]{f: s.f, out: &o.Errors}
}

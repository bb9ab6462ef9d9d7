package operators

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// This file holds the reactive operators that keep one event type: debounce,
// throttle and dedup. The buffers, which turn events into slices of events,
// are in reactive_buffer.go.
//
// # Configuration errors
//
// The constructors (NewDebounce, NewThrottle, …) validate their arguments
// and return an error that names the setting to change. The fluent methods
// cannot return one, so they build the operator anyway: it keeps the error,
// returns it from Open (so Flow.Open fails with it), and, should events reach
// it regardless, drops them and counts them as Errors. Nothing panics.
//
// # Timers
//
// Timers cannot be cancelled. Every operator here keeps at most one timer in
// the flow's heap per key (per slot for a keyed debounce): a flag, armed,
// says it is there. When it fires, the operator looks at its state again
// (the deadline may have moved, the events may have been flushed) and either
// acts, re-arms for the new deadline, or does nothing. So a timer is never
// stale in a harmful way, and no generation number is needed.
//
// Close makes the timers do nothing when they fire (a flow may fire the
// timers of an operator it removed), and keeps the state. Open again (a
// reload keeping the operator) sets the timers the state needs; on another
// flow, it first forgets the flags, since the old heap is gone.
//
// A flow's Advance runs posted functions before it fires due timers, so an
// event may arrive after a deadline whose timer has not fired yet. Each
// operator checks its deadline on Push too, and acts first when it has
// passed, so the result does not depend on that order.

// reactiveConfigError returns the error a reactive operator reports for a bad
// setting: "operators: debounce "x": duration must be > 0 (got 0s)".
func reactiveConfigError(kind, name, format string, args ...any) error {
	return fmt.Errorf("operators: %s %q: "+format, append([]any{kind, name}, args...)...)
}

// reactiveReject is what an operator with a configuration error does with a
// batch that reaches it anyway: count it in and as errors.
func reactiveReject(s *Stats, n int) {
	s.In(n)
	s.Errors(n)
}

// ---------------------------------------------------------------------------
// debounce

// Debounce emits an event only once its key has been silent for Wait: of a
// burst of events closer together than Wait, only the last one is emitted,
// Wait after it arrived. Without a key function the whole stream is one key.
// Arrival time is the flow clock's time at Push.
//
//	quiet, err := operators.NewDebounce[Tick]("quiet", time.Second)
//	perSym, err := operators.NewDebounceBy("quiet", time.Second, func(t Tick) string { return t.Sym })
//
// Stats: In counts every event, Out the emitted ones, Dropped the ones a
// later event of the same key replaced. Flush emits every pending event, in
// the order of their last arrival. Memory: one slot per key that has an
// event pending; slots are reused.
type Debounce[T any, K comparable] struct {
	single[T, T]
	wait int64
	key  func(T) K // nil: the whole stream is one key, held in one
	err  error

	closed bool // Close ran: timers do nothing

	one   debounceSlot[T, K]        // the slot when key is nil
	slots map[K]*debounceSlot[T, K] // keys with an event pending (key set)
	free  []*debounceSlot[T, K]     // released slots, reused
	seq   uint64                    // arrival counter, orders Flush
	sorts []*debounceSlot[T, K]     // scratch of sorted (Flush, Open)
	flush []T                       // Flush's output batch, reused
}

// debounceSlot holds one key's pending event. It is the Timed its timer
// calls, so a keyed debounce needs no lookup from a timer to its key.
//
// Invariant: armed is true exactly while a timer for this slot is in the
// flow's heap. It survives a release, so a reused slot does not set a
// second timer while the first is still pending.
type debounceSlot[T any, K comparable] struct {
	op    *Debounce[T, K]
	key   K
	val   T
	due   int64  // last arrival + wait: when the key's silence is over
	seq   uint64 // when val arrived, in the operator's arrival order
	has   bool   // val is pending
	armed bool
}

// OnTimer emits the slot's event if its silence is over, or re-arms for
// the moved deadline.
func (s *debounceSlot[T, K]) OnTimer(int64, uint64) { s.op.fire(s) }

// NewDebounce returns a debounce over the whole stream: an event is emitted
// once wait has passed without another one. wait must be > 0. (Its key
// type is struct{}: the stream is one key.)
func NewDebounce[T any](name string, wait time.Duration) (*Debounce[T, struct{}], error) {
	o := newDebounce[T, struct{}](name, wait, nil)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// NewDebounceBy returns a debounce per key: an event is emitted once wait
// has passed without another event of the same key(event). wait must be
// > 0 and key not nil.
func NewDebounceBy[T any, K comparable](name string, wait time.Duration, key func(T) K) (*Debounce[T, K], error) {
	if key == nil {
		return nil, reactiveConfigError("debounce", name, "key func is nil")
	}
	o := newDebounce(name, wait, key)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newDebounce[T any, K comparable](name string, wait time.Duration, key func(T) K) *Debounce[T, K] {
	o := &Debounce[T, K]{wait: int64(wait), key: key}
	o.init(name, "debounce", o)
	o.one.op = o
	if key != nil {
		o.slots = make(map[K]*debounceSlot[T, K])
	}
	if wait <= 0 {
		o.err = reactiveConfigError("debounce", name, "duration must be > 0 (got %s)", wait)
	}
	return o
}

// Open keeps the flow; it fails if the debounce was built with a bad
// setting. Opened again (a reload that keeps the operator, on this flow or
// another), it sets the timers its pending events need.
func (o *Debounce[T, K]) Open(f *Flow) error {
	if o.flow != f { // the timers set in another flow's heap are gone
		o.one.armed = false
		for _, s := range o.free {
			s.armed = false
		}
		for _, s := range o.slots {
			s.armed = false
		}
	}
	o.flow, o.closed = f, false
	if o.one.has {
		o.arm(&o.one)
	}
	ss := o.sorted()
	for _, s := range ss {
		o.arm(s)
	}
	clear(ss)
	return o.err
}

// Close stops the debounce: its timers, when they fire, do nothing. The
// events it holds stay (a Drain before Close emits them).
func (o *Debounce[T, K]) Close() error {
	o.closed = true
	return nil
}

// sorted returns the pending slots of a keyed debounce in arrival order,
// in a scratch slice valid until the next call.
func (o *Debounce[T, K]) sorted() []*debounceSlot[T, K] {
	ss := o.sorts[:0]
	for _, s := range o.slots {
		ss = append(ss, s)
	}
	slices.SortFunc(ss, func(a, b *debounceSlot[T, K]) int { return cmp.Compare(a.seq, b.seq) })
	o.sorts = ss
	return ss
}

// Wait returns the silence after which an event is emitted.
func (o *Debounce[T, K]) Wait() time.Duration { return time.Duration(o.wait) }

// Pending returns how many events the debounce holds. Flow goroutine only.
func (o *Debounce[T, K]) Pending() int {
	if o.key == nil {
		if o.one.has {
			return 1
		}
		return 0
	}
	return len(o.slots)
}

// Push records the last event of batch per key and (re)starts its silence.
// A pending event whose silence is already over is emitted first.
func (o *Debounce[T, K]) Push(batch []T) {
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
	if o.key == nil {
		s := &o.one
		if s.has && now >= s.due {
			o.emit(s)
		}
		dropped := len(batch) - 1
		if s.has {
			dropped++
		}
		o.hold(s, batch[len(batch)-1], now)
		o.stats.Dropped(dropped)
		o.stats.Observe(start, len(batch))
		return
	}
	dropped := 0
	for i := range batch {
		k := o.key(batch[i])
		s := o.slots[k]
		if s != nil && now >= s.due {
			o.emit(s) // releases s
			s = nil
		}
		if s == nil {
			s = o.newSlot(k)
		} else {
			dropped++
		}
		o.hold(s, batch[i], now)
	}
	o.stats.Dropped(dropped)
	o.stats.Observe(start, len(batch))
}

// hold makes v the slot's pending event and arms its timer if none is set.
func (o *Debounce[T, K]) hold(s *debounceSlot[T, K], v T, now int64) {
	s.val, s.has, s.due, s.seq = v, true, now+o.wait, o.seq
	o.seq++
	o.arm(s)
}

// arm sets s's timer for its deadline unless one is set already.
func (o *Debounce[T, K]) arm(s *debounceSlot[T, K]) {
	if !s.armed {
		s.armed = true
		o.flow.At(s.due, s, 0)
	}
}

func (o *Debounce[T, K]) newSlot(k K) *debounceSlot[T, K] {
	var s *debounceSlot[T, K]
	if n := len(o.free); n > 0 {
		s = o.free[n-1]
		o.free[n-1] = nil
		o.free = o.free[:n-1]
	} else {
		s = &debounceSlot[T, K]{op: o}
	}
	s.key = k
	o.slots[k] = s
	return s
}

// fire runs when s's timer is due.
func (o *Debounce[T, K]) fire(s *debounceSlot[T, K]) {
	s.armed = false
	if o.closed || !s.has {
		return // closed, flushed, or emitted by a Push that saw the deadline pass
	}
	if o.flow.Now() < s.due {
		s.armed = true // events arrived since the timer was set
		o.flow.At(s.due, s, 0)
		return
	}
	o.emit(s)
}

// emit hands s's pending event downstream and releases s.
func (o *Debounce[T, K]) emit(s *debounceSlot[T, K]) {
	v := o.release(s)
	o.Out.EmitOne(v)
}

// release empties s (a keyed slot goes back to the free list) and returns
// what it held.
func (o *Debounce[T, K]) release(s *debounceSlot[T, K]) T {
	var zero T
	v := s.val
	s.val, s.has = zero, false
	if o.key != nil {
		var zk K
		delete(o.slots, s.key)
		s.key = zk
		o.free = append(o.free, s)
	}
	return v
}

// Flush emits every pending event as one batch, in the order they arrived.
func (o *Debounce[T, K]) Flush() {
	if o.key == nil {
		if o.one.has {
			o.emit(&o.one)
		}
		return
	}
	if len(o.slots) == 0 {
		return
	}
	ss := o.sorted()
	out := o.flush[:0]
	for i, s := range ss {
		out = append(out, o.release(s))
		ss[i] = nil
	}
	o.flush = out
	o.Out.Emit(out)
	clear(out)
}

// Debounce emits an event only after wait without another one (the last
// event of each burst). An invalid wait makes the flow's Open fail.
func (s *Stream[T]) Debounce(wait time.Duration) *Stream[T] {
	o := newDebounce[T, struct{}](autoName(s.f, "debounce"), wait, nil)
	return attach(s, o, o, &o.Out)
}

// DebounceBy debounces each key(event) on its own: an event is emitted
// after wait without another event of the same key. An invalid wait or a
// nil key makes the flow's Open fail.
func DebounceBy[T any, K comparable](s *Stream[T], wait time.Duration, key func(T) K) *Stream[T] {
	name := autoName(s.f, "debounce")
	o := newDebounce(name, wait, key)
	if key == nil {
		o.err = reactiveConfigError("debounce", name, "key func is nil")
	}
	return attach(s, o, o, &o.Out)
}

// ---------------------------------------------------------------------------
// throttle

// Throttle emits at most one event per Interval, on the leading edge: an
// event that arrives when no interval is running is emitted at once and
// starts one ([t, t+Interval)); the events that arrive during it are
// dropped. An event arriving exactly at t+Interval starts the next one.
// Arrival time is the flow clock's time at Push.
//
// A trailing throttle (NewThrottleTrailing) also keeps the last event
// dropped during an interval and emits it when the interval ends, which
// starts a new interval; so a steady stream comes out once per Interval.
//
//	calm, err := operators.NewThrottle[Tick]("calm", 100*time.Millisecond)
//
// Stats: Dropped counts the events that are never emitted (a trailing
// throttle's held event is not dropped until a later one replaces it).
// Flush emits a trailing throttle's held event; a leading one holds none.
type Throttle[T any] struct {
	single[T, T]
	interval int64
	trailing bool
	err      error

	until   int64 // end of the running interval, if running
	running bool  // an interval is running (until is set)
	held    T     // the trailing event (trailing only)
	has     bool  // held is set
	armed   bool  // a timer for until is in the flow's heap
	closed  bool  // Close ran: the timer does nothing
}

// NewThrottle returns a leading-edge throttle: the first event of each
// interval passes, the others are dropped. interval must be > 0.
func NewThrottle[T any](name string, interval time.Duration) (*Throttle[T], error) {
	o := newThrottle[T](name, interval, false)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// NewThrottleTrailing returns a throttle that, like NewThrottle's, emits
// the first event of each interval, and also emits the last event dropped
// during an interval when it ends. interval must be > 0.
func NewThrottleTrailing[T any](name string, interval time.Duration) (*Throttle[T], error) {
	o := newThrottle[T](name, interval, true)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newThrottle[T any](name string, interval time.Duration, trailing bool) *Throttle[T] {
	o := &Throttle[T]{interval: int64(interval), trailing: trailing}
	o.init(name, "throttle", o)
	if interval <= 0 {
		o.err = reactiveConfigError("throttle", name, "duration must be > 0 (got %s)", interval)
	}
	return o
}

// Open keeps the flow; it fails if the throttle was built with a bad
// setting. Opened again (a reload that keeps the operator, on this flow or
// another), it sets the timer its held event needs.
func (o *Throttle[T]) Open(f *Flow) error {
	if o.flow != f {
		o.armed = false // a timer in another flow's heap is gone
	}
	o.flow, o.closed = f, false
	if o.has && !o.armed {
		o.armed = true
		o.flow.At(o.until, o, 0)
	}
	return o.err
}

// Close stops the throttle: its timer, when it fires, does nothing. A
// held trailing event stays (a Drain before Close emits it).
func (o *Throttle[T]) Close() error {
	o.closed = true
	return nil
}

// Interval returns the throttle's interval.
func (o *Throttle[T]) Interval() time.Duration { return time.Duration(o.interval) }

// Trailing reports whether the throttle emits on the trailing edge too.
func (o *Throttle[T]) Trailing() bool { return o.trailing }

// Push emits the batch's first event if no interval is running, and drops
// (or, trailing, holds) the rest. Events of one batch share one arrival
// time, so at most one of them passes.
func (o *Throttle[T]) Push(batch []T) {
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
	if o.has && now >= o.until {
		o.emitHeld(now) // its timer is due but has not fired yet
	}
	rest := batch // the events that do not pass
	inside := o.running && now < o.until
	if !inside {
		rest = batch[1:]
	}
	dropped := len(rest)
	if o.trailing && len(rest) > 0 {
		if !o.has {
			dropped-- // the last one is held, not dropped
		}
		o.held, o.has = rest[len(rest)-1], true
	}
	o.stats.Dropped(dropped)
	if !inside {
		o.running, o.until = true, now+o.interval
	}
	if o.has && !o.armed {
		o.armed = true
		o.flow.At(o.until, o, 0)
	}
	o.stats.Observe(start, len(batch))
	if !inside {
		o.Out.EmitOne(batch[0])
	}
}

// OnTimer ends a trailing throttle's interval: it emits the held event, or
// re-arms if the interval has moved since the timer was set.
func (o *Throttle[T]) OnTimer(int64, uint64) {
	o.armed = false
	if o.closed || !o.has {
		return
	}
	now := o.flow.Now()
	if now < o.until {
		o.armed = true
		o.flow.At(o.until, o, 0)
		return
	}
	o.emitHeld(now)
}

// emitHeld emits the trailing event; that starts a new interval.
func (o *Throttle[T]) emitHeld(now int64) {
	var zero T
	v := o.held
	o.held, o.has = zero, false
	o.running, o.until = true, now+o.interval
	o.Out.EmitOne(v)
}

// Flush emits a trailing throttle's held event.
func (o *Throttle[T]) Flush() {
	if o.has {
		o.emitHeld(o.flow.Now())
	}
}

// Throttle emits the first event, then drops the others for interval
// (leading edge only). An invalid interval makes the flow's Open fail.
func (s *Stream[T]) Throttle(interval time.Duration) *Stream[T] {
	o := newThrottle[T](autoName(s.f, "throttle"), interval, false)
	return attach(s, o, o, &o.Out)
}

// ThrottleTrailing is Throttle that also emits, when each interval ends,
// the last event it dropped during it.
func (s *Stream[T]) ThrottleTrailing(interval time.Duration) *Stream[T] {
	o := newThrottle[T](autoName(s.f, "throttle"), interval, true)
	return attach(s, o, o, &o.Out)
}

// ---------------------------------------------------------------------------
// dedup

// DefaultDedupMaxKeys is how many keys a dedup remembers when its maxKeys
// is 0.
const DefaultDedupMaxKeys = 1 << 16

// Dedup drops an event whose key passed less than Window ago (by the flow
// clock): the first event of a key passes and opens its window
// [t, t+Window); the repeats inside it are dropped and do not extend it; the
// first event at or after t+Window passes and opens a new one.
//
//	once, err := operators.NewDedup("once", func(o Order) string { return o.ID }, time.Minute, 0)
//
// Memory is bounded: it remembers at most MaxKeys keys. Keys leave when
// their window ends (swept on Push, and by a timer when the stream is
// idle); when MaxKeys keys are remembered, a new key evicts the oldest one
// (whose window ends first), so a repeat of that key may pass early:
// Evicted counts those. Stats: Dropped counts the repeats.
type Dedup[T any, K comparable] struct {
	single[T, T]
	key     func(T) K
	window  int64
	maxKeys int
	err     error

	seen    map[K]int64   // remembered key → when it passed
	order   dedupQueue[K] // the same keys, in the order they passed: the order their windows end
	armed   bool          // a sweep timer is in the flow's heap
	closed  bool          // Close ran: the sweep timer does nothing
	evicted atomic.Uint64
	buf     []T // Push's output batch, reused
}

// dedupEntry is a remembered key and when it passed.
type dedupEntry[K comparable] struct {
	key K
	at  int64
}

// dedupQueue is a FIFO ring of entries that grows by doubling (a dedup
// never lets it hold more than its maxKeys).
type dedupQueue[K comparable] struct {
	buf  []dedupEntry[K]
	head int
	n    int
}

func (q *dedupQueue[K]) push(e dedupEntry[K]) {
	if q.n == len(q.buf) {
		nb := make([]dedupEntry[K], max(16, 2*len(q.buf)))
		m := copy(nb, q.buf[q.head:])
		copy(nb[m:], q.buf[:q.head])
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
}

func (q *dedupQueue[K]) front() *dedupEntry[K] { return &q.buf[q.head] }

func (q *dedupQueue[K]) pop() dedupEntry[K] {
	e := q.buf[q.head]
	q.buf[q.head] = dedupEntry[K]{}
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	return e
}

// NewDedup returns a dedup by key(event) over window. window must be > 0,
// key not nil, and maxKeys >= 0 (0: DefaultDedupMaxKeys).
func NewDedup[T any, K comparable](name string, key func(T) K, window time.Duration, maxKeys int) (*Dedup[T, K], error) {
	o := newDedup(name, key, window, maxKeys)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newDedup[T any, K comparable](name string, key func(T) K, window time.Duration, maxKeys int) *Dedup[T, K] {
	o := &Dedup[T, K]{key: key, window: int64(window), maxKeys: maxKeys}
	o.init(name, "dedup", o)
	if maxKeys == 0 {
		o.maxKeys = DefaultDedupMaxKeys
	}
	switch {
	case key == nil:
		o.err = reactiveConfigError("dedup", name, "key func is nil")
	case window <= 0:
		o.err = reactiveConfigError("dedup", name, "window must be > 0 (got %s)", window)
	case maxKeys < 0:
		o.err = reactiveConfigError("dedup", name, "maxKeys must be >= 0 (0: %d) (got %d)", DefaultDedupMaxKeys, maxKeys)
	default:
		o.seen = make(map[K]int64, min(o.maxKeys, 1024))
	}
	return o
}

// Open keeps the flow; it fails if the dedup was built with a bad
// setting. Opened again (a reload that keeps the operator and the keys it
// remembers, on this flow or another), it sets its sweep timer.
func (o *Dedup[T, K]) Open(f *Flow) error {
	if o.flow != f {
		o.armed = false // a timer in another flow's heap is gone
	}
	o.flow, o.closed = f, false
	o.arm()
	return o.err
}

// Close stops the sweep timer (it does nothing when it fires). The keys
// stay remembered, for a reload that keeps the operator.
func (o *Dedup[T, K]) Close() error {
	o.closed = true
	return nil
}

// arm sets the sweep timer for the first window to end, unless one is set.
func (o *Dedup[T, K]) arm() {
	if !o.armed && o.order.n > 0 {
		o.armed = true
		o.flow.At(o.order.front().at+o.window, o, 0)
	}
}

// Window returns how long a key is remembered after it passed.
func (o *Dedup[T, K]) Window() time.Duration { return time.Duration(o.window) }

// MaxKeys returns how many keys the dedup remembers at most.
func (o *Dedup[T, K]) MaxKeys() int { return o.maxKeys }

// Len returns how many keys are remembered now (some may have a window
// that has ended but has not been swept yet). Flow goroutine only.
func (o *Dedup[T, K]) Len() int { return len(o.seen) }

// Evicted returns how many keys were forgotten before their window ended
// because MaxKeys keys were remembered. Safe from any goroutine.
func (o *Dedup[T, K]) Evicted() uint64 { return o.evicted.Load() }

// Push passes the events whose key was not seen within the window, as one
// batch, and drops the rest.
func (o *Dedup[T, K]) Push(batch []T) {
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
	o.sweep(now)
	buf := o.buf[:0]
	for i := range batch {
		k := o.key(batch[i])
		if _, ok := o.seen[k]; ok {
			continue
		}
		if o.order.n >= o.maxKeys {
			e := o.order.pop()
			delete(o.seen, e.key)
			o.evicted.Add(1)
		}
		o.seen[k] = now
		o.order.push(dedupEntry[K]{key: k, at: now})
		buf = append(buf, batch[i])
	}
	o.buf = buf
	o.stats.Dropped(len(batch) - len(buf))
	o.arm()
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

// sweep forgets the keys whose window has ended by now.
func (o *Dedup[T, K]) sweep(now int64) {
	for o.order.n > 0 && o.order.front().at+o.window <= now {
		e := o.order.pop()
		delete(o.seen, e.key)
	}
}

// OnTimer sweeps the keys whose window has ended and re-arms for the next
// one, so an idle dedup lets go of its keys.
func (o *Dedup[T, K]) OnTimer(int64, uint64) {
	o.armed = false
	if o.closed {
		return
	}
	o.sweep(o.flow.Now())
	o.arm()
}

// Dedup drops an event whose key(event) passed less than window ago,
// remembering at most DefaultDedupMaxKeys keys (DedupBy takes other key
// types and a bound). An invalid setting makes the flow's Open fail.
func (s *Stream[T]) Dedup(key func(T) string, window time.Duration) *Stream[T] {
	o := newDedup(autoName(s.f, "dedup"), key, window, 0)
	return attach(s, o, o, &o.Out)
}

// DedupBy is Stream.Dedup with any comparable key type and a bound on the
// keys remembered (maxKeys; 0: DefaultDedupMaxKeys).
func DedupBy[T any, K comparable](s *Stream[T], key func(T) K, window time.Duration, maxKeys int) *Stream[T] {
	o := newDedup(autoName(s.f, "dedup"), key, window, maxKeys)
	return attach(s, o, o, &o.Out)
}

package operators

import (
	"fmt"
	"reflect"
	"time"
)

// This file holds the operators that join streams (merge, combine_latest,
// zip) or fan one out (share).
//
// A node with two inputs (CombineLatest, Zip) names them LeftPort and
// RightPort and has no main input: in a graph, connect "z.left" and
// "z.right". Several edges may enter the same input; a Merge is just a
// node whose one input takes them all.

// Input names of the two-input operators.
const (
	LeftPort  = "left"
	RightPort = "right"
)

// ---- merge / share ----

// Merge emits every batch it gets, from any number of upstreams, as it
// comes: its one input "" takes several edges.
//
//	p.AddNode("all", operators.NewMerge[Tick]("all")).
//		Connect("parse", "all").Connect("fallback", "all").Connect("all", "output")
//
// Batches are passed on as they are (no copy, nothing allocated); the
// order within each upstream is kept, across upstreams it is the order in
// which they push.
type Merge[T any] struct {
	single[T, T]
	err error // a misuse of the fluent Stream.Merge: Open returns it
}

// NewMerge returns a merge node.
func NewMerge[T any](name string) *Merge[T] {
	o := &Merge[T]{}
	o.init(name, "merge", o)
	return o
}

// Open keeps the flow; it fails if Stream.Merge was given a stream of
// another flow.
func (o *Merge[T]) Open(f *Flow) error {
	o.flow = f
	return o.err
}

// Push passes batch on.
func (o *Merge[T]) Push(batch []T) { passOn(&o.single, batch) }

// Share hands every batch to each node connected to its output: a named
// fan-out point in a graph.
//
//	p.AddNode("ticks", operators.NewShare[Tick]("ticks")).
//		Connect("input", "ticks").Connect("ticks", "alerts").Connect("ticks", "archive")
//
// Any output may already be connected to several inputs; a Share gives
// the fan-out a name and its own Stats. The fluent Stream.Share needs no
// node. Batches are passed on as they are.
type Share[T any] struct {
	single[T, T]
}

// NewShare returns a share node.
func NewShare[T any](name string) *Share[T] {
	o := &Share[T]{}
	o.init(name, "share", o)
	return o
}

// Push passes batch on.
func (o *Share[T]) Push(batch []T) { passOn(&o.single, batch) }

func passOn[T any](s *single[T, T], batch []T) {
	start := time.Now()
	s.stats.In(len(batch))
	s.stats.Observe(start, len(batch))
	s.Out.Emit(batch)
}

// Merge merges s and others into one stream (a Merge node). Every stream
// must belong to s's flow; one that does not makes the flow's Open fail.
func (s *Stream[T]) Merge(others ...*Stream[T]) *Stream[T] {
	o := NewMerge[T](autoName(s.f, "merge"))
	out := attach(s, o, o, &o.Out)
	for _, x := range others {
		if x.f != s.f {
			if o.err == nil {
				o.err = fmt.Errorf("operators: merge %q: a merged stream belongs to flow %q, not %q", o.stats.Name, x.f.Name(), s.f.Name())
			}
			continue
		}
		x.out.Connect(o)
	}
	return out
}

// ---- two inputs ----

// twoInputs is the Node plumbing of an operator with inputs LeftPort (A)
// and RightPort (B) and one main output Out.
type twoInputs[A, B, Out any] struct {
	base
	Out   Outlet[Out]
	left  Inlet[A]
	right Inlet[B]
	err   error // a configuration error or fluent misuse: Open returns it
}

// Open keeps the flow; it fails if the node was built (by a fluent
// function) with bad options or streams of two flows.
func (t *twoInputs[A, B, Out]) Open(f *Flow) error {
	t.flow = f
	return t.err
}

func (t *twoInputs[A, B, Out]) init(name, kind string, left Inlet[A], right Inlet[B]) {
	t.base = newBase(name, kind)
	t.Out.stats = t.stats
	t.left, t.right = left, right
}

// Input returns the inlet LeftPort or RightPort; there is no main input.
func (t *twoInputs[A, B, Out]) Input(name string) (any, reflect.Type, bool) {
	switch name {
	case LeftPort:
		return t.left, reflect.TypeFor[A](), true
	case RightPort:
		return t.right, reflect.TypeFor[B](), true
	}
	return nil, nil, false
}

// Output returns the main output.
func (t *twoInputs[A, B, Out]) Output(name string) (Port, bool) {
	if name != "" {
		return nil, false
	}
	return &t.Out, true
}

// Outputs lists the main output.
func (t *twoInputs[A, B, Out]) Outputs() []string { return []string{""} }

// Left returns the inlet of the left input.
func (t *twoInputs[A, B, Out]) Left() Inlet[A] { return t.left }

// Right returns the inlet of the right input.
func (t *twoInputs[A, B, Out]) Right() Inlet[B] { return t.right }

// joinStreams registers op, connects left and right to its inputs and
// returns its output as a stream; a right stream of another flow is not
// connected and makes Open fail.
func joinStreams[A, B, Out any](left *Stream[A], right *Stream[B], op Operator, t *twoInputs[A, B, Out]) *Stream[Out] {
	if right.f != left.f {
		if t.err == nil {
			t.err = fmt.Errorf("operators: %s %q: the right stream belongs to flow %q, the left one to %q", t.stats.Kind, t.stats.Name, right.f.Name(), left.f.Name())
		}
	} else {
		right.out.Connect(t.right)
	}
	_ = left.f.Add(op)
	left.out.Connect(t.left)
	return &Stream[Out]{f: left.f, out: &t.Out}
}

// ---- combine_latest ----

// CombineLatest keeps the latest event of each input and, once both have
// had one, emits Fn(latestLeft, latestRight) for every new event on
// either.
//
//	c := operators.NewCombineLatest("quote", func(b Bid, a Ask) Quote { return Quote{b.Px, a.Px} })
//	p.AddNode("q", c).Connect("bids", "q.left").Connect("asks", "q.right").Connect("q", "output")
//
// One output per event received once both sides have a value (a batch of
// n left events gives n outputs, each with its own left value). Events
// that come before the other side has one only update the latest value
// (they are counted In, not Out).
type CombineLatest[A, B, Out any] struct {
	twoInputs[A, B, Out]
	Fn func(A, B) Out

	// Flow goroutine only.
	a    A
	b    B
	hasA bool
	hasB bool
	buf  []Out
}

// NewCombineLatest returns a combine_latest node.
func NewCombineLatest[A, B, Out any](name string, fn func(A, B) Out) *CombineLatest[A, B, Out] {
	o := &CombineLatest[A, B, Out]{Fn: fn}
	o.twoInputs.init(name, "combine_latest", InletFunc[A](o.pushLeft), InletFunc[B](o.pushRight))
	return o
}

func (o *CombineLatest[A, B, Out]) pushLeft(batch []A) {
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	if o.hasB {
		for i := range batch {
			buf = append(buf, o.Fn(batch[i], o.b))
		}
	}
	o.a, o.hasA = batch[len(batch)-1], true
	o.buf = buf
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

func (o *CombineLatest[A, B, Out]) pushRight(batch []B) {
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	if o.hasA {
		for i := range batch {
			buf = append(buf, o.Fn(o.a, batch[i]))
		}
	}
	o.b, o.hasB = batch[len(batch)-1], true
	o.buf = buf
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

// Close forgets the latest values.
func (o *CombineLatest[A, B, Out]) Close() error {
	var a A
	var b B
	o.a, o.b, o.hasA, o.hasB = a, b, false, false
	return nil
}

// CombineLatestWith adds a CombineLatest of left and right. Both streams
// must belong to the same flow; otherwise the flow's Open fails.
func CombineLatestWith[A, B, Out any](left *Stream[A], right *Stream[B], fn func(A, B) Out) *Stream[Out] {
	o := NewCombineLatest(autoName(left.f, "combine_latest"), fn)
	return joinStreams(left, right, o, &o.twoInputs)
}

// ---- zip ----

// ZipOverflow says what a zip does with an event that arrives when its
// side's queue is full.
type ZipOverflow int

const (
	// ZipDropNewest drops the arriving event (the default): the pairs
	// already queued stay aligned with the other side.
	ZipDropNewest ZipOverflow = iota
	// ZipDropOldest drops the oldest queued event of that side to make
	// room: the queue keeps the most recent events.
	ZipDropOldest
)

func (p ZipOverflow) String() string {
	switch p {
	case ZipDropNewest:
		return "drop-newest"
	case ZipDropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("ZipOverflow(%d)", int(p))
}

// ZipOptions configures a Zip. Every field is optional.
type ZipOptions struct {
	// MaxQueue bounds the events each side holds while it waits for the
	// other side. Default 1024.
	MaxQueue int
	// Overflow is what happens to an event that finds its side's queue
	// full: ZipDropNewest (default) or ZipDropOldest. Either way the drop
	// is counted in Stats.Dropped, and the pairs after it are shifted.
	Overflow ZipOverflow
}

// EnsureDefaults fills every zero field with its default.
func (o *ZipOptions) EnsureDefaults() {
	if o.MaxQueue == 0 {
		o.MaxQueue = 1024
	}
}

// Validate reports the first invalid field (call EnsureDefaults first).
func (o *ZipOptions) Validate() error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("operators: ZipOptions: %w", err)
	}
	return nil
}

func (o *ZipOptions) validate() error {
	switch {
	case o.MaxQueue < 1:
		return fmt.Errorf("MaxQueue %d: must be at least 1 (0 means 1024)", o.MaxQueue)
	case o.Overflow != ZipDropNewest && o.Overflow != ZipDropOldest:
		return fmt.Errorf("unknown Overflow %v: use ZipDropNewest or ZipDropOldest", o.Overflow)
	}
	return nil
}

// Zip pairs the i-th event of its left input with the i-th of its right
// input and emits Fn(left, right).
//
//	z, err := operators.NewZip("pair", func(req Request, resp Response) Call { return Call{req, resp} },
//		operators.ZipOptions{MaxQueue: 256})
//	p.AddNode("z", z).Connect("reqs", "z.left").Connect("resps", "z.right").Connect("z", "output")
//
// An event whose counterpart has not come yet waits in its side's queue
// (at most one side has a queue at a time), bounded by MaxQueue with the
// Overflow policy. Queues are rings that grow to MaxQueue and are then
// reused. Flush does nothing (an unpaired event has nothing to pair
// with); Close drops what is queued, counted Dropped.
type Zip[A, B, Out any] struct {
	twoInputs[A, B, Out]
	Fn   func(A, B) Out
	opts ZipOptions

	// Flow goroutine only.
	as  zipQueue[A]
	bs  zipQueue[B]
	buf []Out
}

// NewZip returns a zip node, or an error naming the option to fix.
func NewZip[A, B, Out any](name string, fn func(A, B) Out, opts ZipOptions) (*Zip[A, B, Out], error) {
	o := newZip(name, fn, opts)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

func newZip[A, B, Out any](name string, fn func(A, B) Out, opts ZipOptions) *Zip[A, B, Out] {
	opts.EnsureDefaults()
	o := &Zip[A, B, Out]{Fn: fn, opts: opts}
	o.twoInputs.init(name, "zip", InletFunc[A](o.pushLeft), InletFunc[B](o.pushRight))
	if err := opts.validate(); err != nil {
		o.err = fmt.Errorf("operators: zip %q: %w", name, err)
	} else if fn == nil {
		o.err = fmt.Errorf("operators: zip %q: fn is nil", name)
	}
	return o
}

// Options returns the options in effect (defaults filled in).
func (o *Zip[A, B, Out]) Options() ZipOptions { return o.opts }

// Queued returns how many left and right events wait for a counterpart.
// Flow goroutine only.
func (o *Zip[A, B, Out]) Queued() (left, right int) { return o.as.len(), o.bs.len() }

func (o *Zip[A, B, Out]) pushLeft(batch []A) {
	if o.err != nil {
		o.stats.In(len(batch))
		o.stats.Errors(len(batch))
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	dropped := 0
	for i := range batch {
		if o.bs.len() > 0 {
			buf = append(buf, o.Fn(batch[i], o.bs.pop()))
			continue
		}
		if !o.as.push(batch[i], o.opts) {
			dropped++
		}
	}
	o.buf = buf
	o.stats.Dropped(dropped)
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

func (o *Zip[A, B, Out]) pushRight(batch []B) {
	if o.err != nil {
		o.stats.In(len(batch))
		o.stats.Errors(len(batch))
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	dropped := 0
	for i := range batch {
		if o.as.len() > 0 {
			buf = append(buf, o.Fn(o.as.pop(), batch[i]))
			continue
		}
		if !o.bs.push(batch[i], o.opts) {
			dropped++
		}
	}
	o.buf = buf
	o.stats.Dropped(dropped)
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

// Close drops the queued events (counted Dropped).
func (o *Zip[A, B, Out]) Close() error {
	o.stats.Dropped(o.as.len() + o.bs.len())
	o.as.reset()
	o.bs.reset()
	return nil
}

// ZipWith adds a Zip of left and right. With invalid opts, or streams of
// two flows, the flow's Open fails with the error (and events that reach
// the zip anyway count as Errors).
func ZipWith[A, B, Out any](left *Stream[A], right *Stream[B], fn func(A, B) Out, opts ZipOptions) *Stream[Out] {
	o := newZip(autoName(left.f, "zip"), fn, opts)
	return joinStreams(left, right, o, &o.twoInputs)
}

// zipQueue is a FIFO ring that grows (doubling) up to a bound. Flow
// goroutine only.
type zipQueue[T any] struct {
	buf  []T // len is the capacity; a power of two, or 0
	head int
	n    int
}

func (q *zipQueue[T]) len() int { return q.n }

// push appends v; on a full queue (MaxQueue) it applies the overflow
// policy and reports false if v was dropped.
func (q *zipQueue[T]) push(v T, opts ZipOptions) bool {
	if q.n >= opts.MaxQueue {
		if opts.Overflow == ZipDropNewest {
			return false
		}
		q.pop()
		q.pushRing(v)
		return false
	}
	q.pushRing(v)
	return true
}

func (q *zipQueue[T]) pushRing(v T) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = v
	q.n++
}

func (q *zipQueue[T]) grow() {
	size := max(8, 2*len(q.buf))
	nb := make([]T, size)
	for i := range q.n {
		nb[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = nb, 0
}

func (q *zipQueue[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return v
}

func (q *zipQueue[T]) reset() {
	clear(q.buf)
	q.head, q.n = 0, 0
}

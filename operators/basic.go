package operators

import (
	"reflect"
	"time"
)

// Source is where events enter a flow: Push hands a batch to everything
// connected to its output. It is the graph's "input" node.
type Source[T any] struct {
	base
	Out Outlet[T]
}

// NewSource returns a source and registers it with f.
func NewSource[T any](f *Flow, name string) *Source[T] {
	s := &Source[T]{base: newBase(name, "source")}
	s.flow = f
	s.Out.stats = s.stats
	_ = f.Add(s)
	return s
}

// Open does nothing: a source knows its flow from NewSource, and Send
// reads it from other goroutines, so it is never written again.
func (s *Source[T]) Open(*Flow) error { return nil }

// Push hands batch downstream. Flow goroutine only.
func (s *Source[T]) Push(batch []T) {
	s.stats.In(len(batch))
	s.Out.Emit(batch)
}

// PushOne hands one event downstream without allocating. Flow goroutine only.
func (s *Source[T]) PushOne(v T) {
	s.stats.In(1)
	s.Out.EmitOne(v)
}

// Send hands v to the flow's goroutine (through Post) and returns without
// waiting for it to be processed. Safe from any goroutine; it allocates
// one closure, so hot producers Push on the flow's goroutine instead.
func (s *Source[T]) Send(v T) error {
	return s.flow.Post(func() { s.PushOne(v) })
}

// Stream returns the source's output as a Stream, to chain operators on.
func (s *Source[T]) Stream() *Stream[T] { return &Stream[T]{f: s.flow, out: &s.Out} }

// Input: a source has none.
func (s *Source[T]) Input(string) (any, reflect.Type, bool) { return nil, nil, false }

// Output returns the main output.
func (s *Source[T]) Output(name string) (Port, bool) {
	if name != "" {
		return nil, false
	}
	return &s.Out, true
}

// Outputs lists the main output.
func (s *Source[T]) Outputs() []string { return []string{""} }

// Filter passes the events for which Pred is true and drops the rest.
//
//	keep := operators.NewFilter("hot", func(t Tick) bool { return t.Score > 0.7 })
type Filter[T any] struct {
	single[T, T]
	Pred func(T) bool
	buf  []T
}

// NewFilter returns a filter node.
func NewFilter[T any](name string, pred func(T) bool) *Filter[T] {
	o := &Filter[T]{Pred: pred}
	o.init(name, "filter", o)
	return o
}

// Push filters batch into a reused buffer and emits the survivors as one batch.
func (o *Filter[T]) Push(batch []T) {
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	for i := range batch {
		if o.Pred(batch[i]) {
			buf = append(buf, batch[i])
		}
	}
	o.buf = buf
	o.stats.Dropped(len(batch) - len(buf))
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf) // let the GC have what the events point to
}

// Map emits Fn(e) for every event e (one out per in, order kept). For
// functions that block or are slow, use NewConcurrentMap.
//
//	scored := operators.NewMap("score", func(t Tick) Scored { return Scored{t, t.Price * t.Qty} })
type Map[In, Out any] struct {
	single[In, Out]
	Fn  func(In) Out
	buf []Out
}

// NewMap returns a map node.
func NewMap[In, Out any](name string, fn func(In) Out) *Map[In, Out] {
	o := &Map[In, Out]{Fn: fn}
	o.init(name, "map", o)
	return o
}

// Push maps batch into a reused buffer and emits it as one batch.
func (o *Map[In, Out]) Push(batch []In) {
	start := time.Now()
	o.stats.In(len(batch))
	buf := o.buf[:0]
	for i := range batch {
		buf = append(buf, o.Fn(batch[i]))
	}
	o.buf = buf
	o.stats.Observe(start, len(batch))
	o.Out.Emit(buf)
	clear(buf)
}

// Sink calls Fn with every batch it gets: the end of a chain.
//
//	done := operators.NewSink("print", func(b []Tick) { for _, t := range b { fmt.Println(t) } })
type Sink[T any] struct {
	base
	Fn func(batch []T)
}

// NewSink returns a sink node. fn must not keep batch past the call.
func NewSink[T any](name string, fn func(batch []T)) *Sink[T] {
	return &Sink[T]{base: newBase(name, "sink"), Fn: fn}
}

// Push calls Fn.
func (o *Sink[T]) Push(batch []T) {
	start := time.Now()
	o.stats.In(len(batch))
	o.Fn(batch)
	o.stats.Observe(start, len(batch))
}

// Input returns the sink's inlet.
func (o *Sink[T]) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return o, reflect.TypeFor[T](), true
}

// Output: a sink has none.
func (o *Sink[T]) Output(string) (Port, bool) { return nil, false }

// Outputs: a sink has none.
func (o *Sink[T]) Outputs() []string { return nil }

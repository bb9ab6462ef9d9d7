package operators

import (
	"fmt"
)

// Stream is the fluent, typed view of an operator's output: each method
// adds an operator to the flow, connects it downstream of the stream and
// returns the new operator's output.
//
//	f := operators.NewFlow(operators.FlowOptions{})
//	src := operators.NewSource[Tick](f, "ticks")
//	src.Stream().
//		Filter(func(t Tick) bool { return t.Score > 0.7 }).
//		Debounce(time.Second).
//		Subscribe(func(t Tick) { fmt.Println(t) })
//
// Operators that change the event type (MapTo, Buffer, Aggregate, Zip, …)
// are functions, not methods: Go methods cannot have type parameters of
// their own. A stream may be subscribed to more than once: every
// downstream gets every event (that is `share`).
//
// Streams are built before the flow runs or on its goroutine.
type Stream[T any] struct {
	f   *Flow
	out *Outlet[T]
	err error // first error of the chain so far (sticky)
}

// Err returns the first error met while building the chain up to this
// stream (a bad setting, an operator that failed to open on an open
// flow), or nil. Flow.Open reports setting errors too.
func (s *Stream[T]) Err() error { return s.err }

// StreamOf wraps an output port as a stream on flow f.
func StreamOf[T any](f *Flow, out *Outlet[T]) *Stream[T] { return &Stream[T]{f: f, out: out} }

// Flow returns the stream's flow.
func (s *Stream[T]) Flow() *Flow { return s.f }

// Outlet returns the port the stream reads from.
func (s *Stream[T]) Outlet() *Outlet[T] { return s.out }

// autoName names the next operator of kind on f.
func autoName(f *Flow, kind string) string { return fmt.Sprintf("%s-%d", kind, len(f.ops)+1) }

// attach registers op, connects s to in and returns op's main output as a stream.
func attach[T, U any](s *Stream[T], op Operator, in Inlet[T], out *Outlet[U]) *Stream[U] {
	err := s.f.Add(op)
	s.out.Connect(in)
	if s.err != nil {
		err = s.err
	}
	return &Stream[U]{f: s.f, out: out, err: err}
}

// Filter keeps the events for which pred is true.
func (s *Stream[T]) Filter(pred func(T) bool) *Stream[T] {
	o := NewFilter(autoName(s.f, "filter"), pred)
	return attach(s, o, o, &o.Out)
}

// Map replaces every event by fn(event) (same type; MapTo changes it).
func (s *Stream[T]) Map(fn func(T) T) *Stream[T] {
	o := NewMap(autoName(s.f, "map"), fn)
	return attach(s, o, o, &o.Out)
}

// MapTo maps a stream of T to a stream of U.
func MapTo[T, U any](s *Stream[T], fn func(T) U) *Stream[U] {
	o := NewMap(autoName(s.f, "map"), fn)
	return attach(s, o, o, &o.Out)
}

// Share returns s itself: a stream already hands every event to each of
// its subscribers. It exists so pipelines read like their ReactiveX
// counterparts.
func (s *Stream[T]) Share() *Stream[T] { return s }

// To connects s to an inlet (a node built by hand, an outlet of another flow's source).
func (s *Stream[T]) To(in Inlet[T]) { s.out.Connect(in) }

// Subscribe calls fn with every event, on the flow's goroutine.
func (s *Stream[T]) Subscribe(fn func(T)) *Sink[T] {
	return s.SubscribeBatch(func(b []T) {
		for i := range b {
			fn(b[i])
		}
	})
}

// SubscribeBatch calls fn with every batch, on the flow's goroutine; fn
// must not keep the batch past the call.
func (s *Stream[T]) SubscribeBatch(fn func([]T)) *Sink[T] {
	o := NewSink(autoName(s.f, "sink"), fn)
	_ = s.f.Add(o)
	s.out.Connect(o)
	return o
}

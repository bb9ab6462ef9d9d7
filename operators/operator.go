package operators

import (
	"errors"
	"fmt"
	"reflect"
)

// Inlet receives batches of events. Push runs on the flow's goroutine.
// The batch (its backing array and the elements in it) belongs to the
// caller and is valid only during the call: an operator that keeps an
// event past Push copies it, and no operator writes to a batch it got.
type Inlet[T any] interface {
	Push(batch []T)
}

// InletFunc adapts a function to an Inlet.
type InletFunc[T any] func(batch []T)

// Push calls f(batch).
func (f InletFunc[T]) Push(batch []T) { f(batch) }

// Outlet is an operator's output port: it hands each batch to every
// connected inlet in the order they were connected. The zero value has no
// downstream and drops what it gets (a port nobody reads). Flow goroutine
// only.
type Outlet[T any] struct {
	to    []Inlet[T]
	stats *Stats // counts Out; nil for side ports counted elsewhere
	one   [1]T   // EmitOne's batch, so a single event needs no allocation
}

// Connect adds in downstream of o.
func (o *Outlet[T]) Connect(in Inlet[T]) { o.to = append(o.to, in) }

// Disconnect removes every downstream (a reload re-wires a kept operator).
func (o *Outlet[T]) Disconnect() { clear(o.to); o.to = o.to[:0] }

// Connected reports whether anything reads o.
func (o *Outlet[T]) Connected() bool { return len(o.to) > 0 }

// Emit hands batch downstream. The batch must stay unchanged until Emit
// returns.
func (o *Outlet[T]) Emit(batch []T) {
	if len(batch) == 0 {
		return
	}
	if o.stats != nil {
		o.stats.Out(len(batch))
	}
	for _, in := range o.to {
		in.Push(batch)
	}
}

// EmitOne hands one event downstream without allocating.
func (o *Outlet[T]) EmitOne(v T) {
	o.one[0] = v
	o.Emit(o.one[:])
	var zero T
	o.one[0] = zero
}

// ElemType is the type of the events o carries.
func (o *Outlet[T]) ElemType() reflect.Type { return reflect.TypeFor[T]() }

// ConnectAny connects an inlet known only as any; it fails when in is not
// an Inlet[T] (the graph checks types before it calls this).
func (o *Outlet[T]) ConnectAny(in any) error {
	i, ok := in.(Inlet[T])
	if !ok {
		return fmt.Errorf("operators: cannot connect %s output to %T", reflect.TypeFor[T](), in)
	}
	o.Connect(i)
	return nil
}

// Port is an output port seen without its type parameter (*Outlet[T]).
type Port interface {
	ElemType() reflect.Type
	ConnectAny(in any) error
	Disconnect()
	Connected() bool
}

// Operator is the lifecycle every operator has. Open runs once on the
// flow's goroutine before the first event (an operator keeps f to read the
// clock and set timers); Close runs once after the last. Stats never
// changes after construction.
type Operator interface {
	Open(f *Flow) error
	Close() error
	Stats() *Stats
}

// Flusher is implemented by operators that hold events (buffers, windows,
// debounces): Flush emits what they hold, as if their time had come. The
// flow calls it on every operator, upstream first, when it is drained.
type Flusher interface {
	Flush()
}

// Node is an operator as the pipeline graph sees it: named, typed inputs
// and outputs, connected by name. "" names the main input and output.
type Node interface {
	Operator
	// Input returns the inlet called name (an Inlet[T]) and its T.
	Input(name string) (inlet any, typ reflect.Type, ok bool)
	// Output returns the output port called name.
	Output(name string) (Port, bool)
	// Outputs lists the output names, the main one ("") first.
	Outputs() []string
}

// ErrClosed is returned by operations on a closed flow.
var ErrClosed = errors.New("operators: flow closed")

// base carries what every built-in operator has: its stats and flow.
// Embedded, it provides Stats, a no-op Close and an Open that keeps f.
type base struct {
	stats *Stats
	flow  *Flow
}

func newBase(name, kind string) base { return base{stats: NewStats(name, kind)} }

// Stats returns the operator's stats.
func (b *base) Stats() *Stats { return b.stats }

// Open keeps the flow.
func (b *base) Open(f *Flow) error { b.flow = f; return nil }

// Close does nothing.
func (b *base) Close() error { return nil }

// single is the Node plumbing of an operator with one input of type In
// and one main output of type Out; operators with side outputs add them
// through extra.
type single[In, Out any] struct {
	base
	Out   Outlet[Out]
	self  Inlet[In]
	extra map[string]Port
	names []string
}

func (s *single[In, Out]) init(name, kind string, self Inlet[In]) {
	s.base = newBase(name, kind)
	s.Out.stats = s.stats
	s.self = self
	s.names = []string{""}
}

// addPort registers a side output.
func (s *single[In, Out]) addPort(name string, p Port) {
	if s.extra == nil {
		s.extra = make(map[string]Port)
	}
	s.extra[name] = p
	s.names = append(s.names, name)
}

// Input returns the main inlet.
func (s *single[In, Out]) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return s.self, reflect.TypeFor[In](), true
}

// Output returns the main output or a side output.
func (s *single[In, Out]) Output(name string) (Port, bool) {
	if name == "" {
		return &s.Out, true
	}
	p, ok := s.extra[name]
	return p, ok
}

// Outputs lists the outputs, main first.
func (s *single[In, Out]) Outputs() []string { return s.names }

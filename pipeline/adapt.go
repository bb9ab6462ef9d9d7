package pipeline

import (
	"fmt"
	"reflect"

	"streamd/operators"
)

// adapted wraps a node whose main output carries Mid (a []Event from a
// buffer, a window result from an aggregate) so that it carries Events,
// as every edge of a config graph does. Its other ports are the inner
// node's. The conversion runs on the flow goroutine as part of the inner
// node's emit.
type adapted[Mid any] struct {
	inner operators.Node
	out   operators.Outlet[Event]
	conv  func(Mid) Event
	buf   []Event
	ports map[string]operators.Port // side ports converted to Event
}

// adapt wraps inner, whose main output must be an *Outlet[Mid].
func adapt[Mid any](inner operators.Node, conv func(Mid) Event) *adapted[Mid] {
	a := &adapted[Mid]{inner: inner, conv: conv}
	p, _ := inner.Output("")
	o, ok := p.(*operators.Outlet[Mid])
	if !ok {
		panic(fmt.Sprintf("pipeline: adapt: %T's main output is %T, not *Outlet[%s]", inner, p, reflect.TypeFor[Mid]()))
	}
	o.Connect(operators.InletFunc[Mid](a.push))
	return a
}

func (a *adapted[Mid]) push(b []Mid) {
	buf := a.buf[:0]
	for i := range b {
		buf = append(buf, a.conv(b[i]))
	}
	a.buf = buf
	a.out.Emit(buf)
	clear(buf)
}

func (a *adapted[Mid]) Open(f *operators.Flow) error { return a.inner.Open(f) }
func (a *adapted[Mid]) Close() error                 { return a.inner.Close() }
func (a *adapted[Mid]) Stats() *operators.Stats      { return a.inner.Stats() }

func (a *adapted[Mid]) Input(name string) (any, reflect.Type, bool) { return a.inner.Input(name) }

func (a *adapted[Mid]) Output(name string) (operators.Port, bool) {
	if name == "" {
		return &a.out, true
	}
	if p, ok := a.ports[name]; ok {
		return p, true
	}
	return a.inner.Output(name)
}

// convertPort makes side port name of inner (an *Outlet[M]) carry Events.
func convertPort[M, Mid any](a *adapted[Mid], name string, conv func(M) Event) {
	p, _ := a.inner.Output(name)
	o, ok := p.(*operators.Outlet[M])
	if !ok {
		panic(fmt.Sprintf("pipeline: convertPort: port %q of %T is %T", name, a.inner, p))
	}
	out := new(operators.Outlet[Event])
	var buf []Event
	o.Connect(operators.InletFunc[M](func(b []M) {
		buf = buf[:0]
		for i := range b {
			buf = append(buf, conv(b[i]))
		}
		out.Emit(buf)
		clear(buf)
	}))
	if a.ports == nil {
		a.ports = make(map[string]operators.Port)
	}
	a.ports[name] = out
}

// passThrough is the identity conversion, for nodes whose main output
// already carries Events but whose side ports need converting.
func passThrough(ev Event) Event { return ev }

func (a *adapted[Mid]) Outputs() []string { return a.inner.Outputs() }

// Flush flushes the inner node, if it holds events.
func (a *adapted[Mid]) Flush() {
	if f, ok := a.inner.(operators.Flusher); ok {
		f.Flush()
	}
}

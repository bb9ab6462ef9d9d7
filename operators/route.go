package operators

import (
	"fmt"
	"time"
)

// RouteMode says how many routes an event may take.
type RouteMode int

const (
	// RouteFirst sends an event to the first route, in rule order, whose
	// Match is true (the default).
	RouteFirst RouteMode = iota
	// RouteAll sends an event to every route whose Match is true.
	RouteAll
)

func (m RouteMode) String() string {
	switch m {
	case RouteFirst:
		return "first"
	case RouteAll:
		return "all"
	}
	return fmt.Sprintf("RouteMode(%d)", int(m))
}

// DefaultRoute names the route of the events no rule takes. It is the
// router's main output (""), not a port of its own: in a graph, connect
// "r" (not "r.default"); in the fluent API, Routes.Default. No rule may be
// called DefaultRoute.
const DefaultRoute = "default"

// RouteRule is one route of a router: the events for which Match is true
// leave on the output port called Name.
type RouteRule[T any] struct {
	Name  string       // port name: letters, digits, '_' and '-'
	Match func(T) bool // called on the flow's goroutine; must not keep the event
}

// RouterOptions configures a Router.
type RouterOptions[T any] struct {
	// Rules are the routes, tried in order. At least one; names unique.
	Rules []RouteRule[T]
	// Mode is RouteFirst (default) or RouteAll.
	Mode RouteMode
}

// validate checks o; the problem is phrased for an operator's error.
func (o *RouterOptions[T]) validate() error {
	if len(o.Rules) == 0 {
		return fmt.Errorf("no rules: RouterOptions.Rules needs at least one route (a router without rules is a pass-through)")
	}
	seen := make(map[string]int, len(o.Rules))
	for i, r := range o.Rules {
		switch {
		case r.Name == "":
			return fmt.Errorf("rule %d has no Name", i)
		case r.Name == DefaultRoute:
			return fmt.Errorf("rule %d: name %q is reserved: the default route is the router's main output (rename the rule)", i, DefaultRoute)
		case !validPortName(r.Name):
			return fmt.Errorf("rule %d: bad name %q: use letters, digits, '_' and '-'", i, r.Name)
		case r.Match == nil:
			return fmt.Errorf("rule %d (%q) has no Match func", i, r.Name)
		}
		if j, dup := seen[r.Name]; dup {
			return fmt.Errorf("rules %d and %d are both called %q", j, i, r.Name)
		}
		seen[r.Name] = i
	}
	if o.Mode != RouteFirst && o.Mode != RouteAll {
		return fmt.Errorf("unknown Mode %v: use RouteFirst or RouteAll", o.Mode)
	}
	return nil
}

// validPortName reports whether name can name a side port: non-empty,
// letters, digits, '_' and '-' (so "node.port" parses back).
func validPortName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Router sends each event to the routes whose predicate it matches (the
// first in rule order, or all of them), and to the default route — the
// main output — when none does.
//
//	r, err := operators.NewRouter("by-score", operators.RouterOptions[Tick]{
//		Rules: []operators.RouteRule[Tick]{
//			{Name: "high", Match: func(t Tick) bool { return t.Score > 0.9 }},
//			{Name: "mid", Match: func(t Tick) bool { return t.Score > 0.5 }},
//		},
//	})
//	p.AddNode("r", r).Connect("input", "r").
//		Connect("r.high", "page").Connect("r.mid", "log").Connect("r", "output")
//
// Each rule is an output port named after it; the events no rule takes
// leave on the main output "". A batch is split into per-route buffers
// that the router reuses (nothing is allocated per event once warm) and
// the routes are then emitted in rule order, the default last: within a
// route the input order is kept, across routes it is not. Events sent to
// a port nothing is connected to are counted as Dropped, not Out; in
// RouteAll mode one event may count as several outs.
type Router[T any] struct {
	single[T, T]
	mode   RouteMode
	routes []route[T]
	def    []T   // the default route's buffer
	err    error // a configuration error (fluent Route only): Open returns it
}

// route is one rule with its port and its reused buffer. Flow goroutine only.
type route[T any] struct {
	name  string
	match func(T) bool
	out   Outlet[T]
	buf   []T
}

// NewRouter returns a router node, or an error naming the option to fix.
func NewRouter[T any](name string, opts RouterOptions[T]) (*Router[T], error) {
	o := newRouter(name, opts)
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// newRouter returns a router; with invalid opts it has no routes and keeps
// the error (see the fluent Route).
func newRouter[T any](name string, opts RouterOptions[T]) *Router[T] {
	o := &Router[T]{mode: opts.Mode}
	o.init(name, "router", o)
	if err := opts.validate(); err != nil {
		o.err = fmt.Errorf("operators: router %q: %w", name, err)
		return o
	}
	o.routes = make([]route[T], len(opts.Rules))
	for i, r := range opts.Rules {
		rt := &o.routes[i]
		rt.name, rt.match = r.Name, r.Match
		rt.out.stats = o.stats
		o.addPort(r.Name, &rt.out)
	}
	return o
}

// Open keeps the flow; it fails if the router was built (by Route) with
// bad options or asked (by Routes.Get) for a rule it does not have.
func (o *Router[T]) Open(f *Flow) error {
	o.flow = f
	return o.err
}

// Mode returns the router's mode.
func (o *Router[T]) Mode() RouteMode { return o.mode }

// Route returns the output port of the rule called name, or of the
// default route for "" and DefaultRoute.
func (o *Router[T]) Route(name string) (*Outlet[T], bool) {
	if name == "" || name == DefaultRoute {
		return &o.Out, true
	}
	for i := range o.routes {
		if o.routes[i].name == name {
			return &o.routes[i].out, true
		}
	}
	return nil, false
}

// Push splits batch into the routes' buffers and emits each non-empty
// one, in rule order, then the default route.
func (o *Router[T]) Push(batch []T) {
	if o.err != nil {
		o.stats.In(len(batch))
		o.stats.Errors(len(batch))
		return
	}
	start := time.Now()
	o.stats.In(len(batch))
	def := o.def[:0]
	first := o.mode == RouteFirst
	for i := range batch {
		taken := false
		for r := range o.routes {
			rt := &o.routes[r]
			if rt.match(batch[i]) {
				rt.buf = append(rt.buf, batch[i])
				taken = true
				if first {
					break
				}
			}
		}
		if !taken {
			def = append(def, batch[i])
		}
	}
	o.def = def
	o.stats.Observe(start, len(batch))
	for r := range o.routes {
		rt := &o.routes[r]
		o.emit(&rt.out, rt.buf)
		clear(rt.buf) // let the GC have what the events point to
		rt.buf = rt.buf[:0]
	}
	o.emit(&o.Out, def)
	clear(def)
}

// emit hands buf to out, or counts it as dropped when nothing reads out.
func (o *Router[T]) emit(out *Outlet[T], buf []T) {
	if len(buf) == 0 {
		return
	}
	if !out.Connected() {
		o.stats.Dropped(len(buf))
		return
	}
	out.Emit(buf)
}

// Routes is the fluent view of a router: one stream per rule, and the
// default route.
type Routes[T any] struct {
	f *Flow
	r *Router[T]
}

// Route adds a router downstream of s. Like every fluent operator it
// cannot return an error: with invalid opts the router keeps NewRouter's
// error, the flow's Open fails with it, and events that reach the router
// anyway are counted as Errors. Nothing panics.
//
//	rs := operators.Route(src.Stream(), operators.RouterOptions[Tick]{Rules: rules})
//	rs.Get("high").Subscribe(page)
//	rs.Default().Subscribe(archive)
func Route[T any](s *Stream[T], opts RouterOptions[T]) *Routes[T] {
	r := newRouter(autoName(s.f, "router"), opts)
	attach(s, r, r, &r.Out)
	return &Routes[T]{f: s.f, r: r}
}

// Get returns the stream of the rule called name. For a name no rule has,
// it returns a stream that never emits, and the router's Open fails with
// an error naming the rules it has.
func (rs *Routes[T]) Get(name string) *Stream[T] {
	out, ok := rs.r.Route(name)
	if !ok {
		if rs.r.err == nil {
			rs.r.err = fmt.Errorf("operators: router %q: Get(%q): no rule is called %q (rules: %s)",
				rs.r.stats.Name, name, name, quoteNames(rs.r.names[1:]))
		}
		out = new(Outlet[T])
	}
	return &Stream[T]{f: rs.f, out: out}
}

// Default returns the stream of the events no rule takes.
func (rs *Routes[T]) Default() *Stream[T] { return &Stream[T]{f: rs.f, out: &rs.r.Out} }

// Router returns the router node.
func (rs *Routes[T]) Router() *Router[T] { return rs.r }

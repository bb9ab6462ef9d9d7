package operators

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Names of the graph's two special nodes.
const (
	InputNode  = "input"
	OutputNode = "output"
)

// Pipeline is a named graph of nodes. Events of type In enter at the
// special node "input"; whatever reaches the special node "output" (type
// Out) goes to the pipeline's output port.
//
//	p := operators.NewPipeline[Tick, Alert]("alerts")
//	p.AddNode("hot", operators.NewFilter("hot", isHot))
//	p.AddNode("alert", operators.NewMap("alert", toAlert))
//	p.Connect("input", "hot").Connect("hot", "alert").Connect("alert", "output")
//	err := p.Build(flow)
//
// An endpoint is a node name, or "node.port" for a named output (a
// router's route, an aggregate's "late") or a named input (a zip's
// "right"). AddNode and Connect record their first error; Build reports
// it, and checks the graph: unknown names, ports that do not exist, type
// mismatches, cycles, and dangling nodes (one the input does not reach,
// or none of whose outputs goes anywhere; what reaches an unconnected
// port is dropped and counted).
type Pipeline[In, Out any] struct {
	name  string
	nodes map[string]Node
	order []string // insertion order, for stable errors
	edges []edge
	err   error

	in    *Source[In]
	out   *Sink[Out]
	Out   Outlet[Out] // the pipeline's output: connect what reads it
	built bool
}

type edge struct {
	from, fromPort, to, toPort string
}

func (e edge) String() string {
	f, t := e.from, e.to
	if e.fromPort != "" {
		f += "." + e.fromPort
	}
	if e.toPort != "" {
		t += "." + e.toPort
	}
	return f + " → " + t
}

// NewPipeline returns an empty pipeline.
func NewPipeline[In, Out any](name string) *Pipeline[In, Out] {
	return &Pipeline[In, Out]{name: name, nodes: make(map[string]Node)}
}

// Name returns the pipeline's name.
func (p *Pipeline[In, Out]) Name() string { return p.name }

func (p *Pipeline[In, Out]) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("operators: pipeline %q: "+format, append([]any{p.name}, args...)...)
	}
}

// ValidName reports whether name can name a node: non-empty, letters,
// digits, '_' and '-', and not one of the special names.
func ValidName(name string) bool {
	if name == "" || name == InputNode || name == OutputNode {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// AddNode adds n under name.
func (p *Pipeline[In, Out]) AddNode(name string, n Node) *Pipeline[In, Out] {
	switch {
	case p.built:
		p.fail("AddNode(%q) after Build", name)
	case !ValidName(name):
		p.fail("bad node name %q: use letters, digits, '_' and '-' (and not %q or %q)", name, InputNode, OutputNode)
	case n == nil:
		p.fail("node %q is nil", name)
	case p.nodes[name] != nil:
		p.fail("two nodes are called %q", name)
	default:
		p.nodes[name] = n
		p.order = append(p.order, name)
	}
	return p
}

// Node returns the node called name.
func (p *Pipeline[In, Out]) Node(name string) Node { return p.nodes[name] }

// Connect adds an edge from an output to an input.
func (p *Pipeline[In, Out]) Connect(from, to string) *Pipeline[In, Out] {
	if p.built {
		p.fail("Connect(%q, %q) after Build", from, to)
		return p
	}
	e := edge{}
	e.from, e.fromPort, _ = strings.Cut(from, ".")
	e.to, e.toPort, _ = strings.Cut(to, ".")
	p.edges = append(p.edges, e)
	return p
}

// Endpoints returns the operators Build added for "input" and "output"
// (nil before Build), so a rebuild can remove them from the flow.
func (p *Pipeline[In, Out]) Endpoints() []Operator {
	if !p.built {
		return nil
	}
	return []Operator{p.in, p.out}
}

// Input returns the pipeline's source (after Build): Push into it.
func (p *Pipeline[In, Out]) Input() *Source[In] { return p.in }

// Validate checks the graph without wiring anything.
func (p *Pipeline[In, Out]) Validate() error {
	_, err := p.check()
	return err
}

// check validates and returns the nodes in topological order.
func (p *Pipeline[In, Out]) check() ([]string, error) {
	if p.err != nil {
		return nil, p.err
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("operators: pipeline %q: "+format, append([]any{p.name}, args...)...))
	}
	inType, outType := reflect.TypeFor[In](), reflect.TypeFor[Out]()
	indeg := make(map[string]int)
	succ := make(map[string][]string)
	anyOut := make(map[string]bool) // one of the node's outputs is connected
	hasInput := false
	for _, e := range p.edges {
		// the type flowing along e, from its source
		var t reflect.Type
		switch {
		case e.from == OutputNode:
			bad("edge %s: %q has no outputs", e, OutputNode)
			continue
		case e.from == InputNode:
			if e.fromPort != "" {
				bad("edge %s: %q has no named outputs", e, InputNode)
				continue
			}
			t = inType
			hasInput = true
		default:
			n := p.nodes[e.from]
			if n == nil {
				bad("edge %s: unknown node %q (nodes: %s)", e, e.from, strings.Join(p.order, ", "))
				continue
			}
			port, ok := n.Output(e.fromPort)
			if !ok {
				bad("edge %s: node %q has no output %q (it has %s)", e, e.from, e.fromPort, quoteNames(n.Outputs()))
				continue
			}
			t = port.ElemType()
			anyOut[e.from] = true
		}
		switch {
		case e.to == InputNode:
			bad("edge %s: nothing may connect into %q", e, InputNode)
			continue
		case e.to == OutputNode:
			if e.toPort != "" {
				bad("edge %s: %q has no named inputs", e, OutputNode)
				continue
			}
			if t != outType {
				bad("edge %s: type mismatch: %s carries %s, the pipeline's output is %s", e, e.from, t, outType)
			}
		default:
			n := p.nodes[e.to]
			if n == nil {
				bad("edge %s: unknown node %q (nodes: %s)", e, e.to, strings.Join(p.order, ", "))
				continue
			}
			_, it, ok := n.Input(e.toPort)
			if !ok {
				bad("edge %s: node %q has no input %q", e, e.to, e.toPort)
				continue
			}
			if t != it {
				bad("edge %s: type mismatch: %s carries %s, %s takes %s", e, e.from, t, e.to, it)
			}
			indeg[e.to]++
		}
		if e.from != InputNode && e.to != OutputNode {
			succ[e.from] = append(succ[e.from], e.to)
		}
		if e.from == InputNode && e.to != OutputNode {
			succ[InputNode] = append(succ[InputNode], e.to)
		}
	}
	if !hasInput && len(p.nodes) > 0 {
		bad("nothing is connected to %q", InputNode)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// reachability from input
	seen := map[string]bool{InputNode: true}
	stack := []string{InputNode}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, s := range succ[n] {
			if !seen[s] {
				seen[s] = true
				stack = append(stack, s)
			}
		}
	}
	for _, name := range p.order {
		n := p.nodes[name]
		if !seen[name] {
			bad("node %q is dangling: nothing from %q reaches it", name, InputNode)
		}
		if len(n.Outputs()) > 0 && !anyOut[name] {
			bad("node %q is dangling: its output goes nowhere (connect it to another node or to %q)", name, OutputNode)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Kahn's algorithm over the nodes (input/output excluded).
	deg := make(map[string]int, len(indeg))
	for _, e := range p.edges {
		if e.from != InputNode && e.to != OutputNode {
			deg[e.to]++
		}
	}
	var order, queue []string
	for _, name := range p.order {
		if deg[name] == 0 {
			queue = append(queue, name)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		order = append(order, n)
		for _, s := range succ[n] {
			deg[s]--
			if deg[s] == 0 {
				queue = append(queue, s)
			}
		}
	}
	if len(order) < len(p.order) {
		var cyc []string
		for _, name := range p.order {
			if !slices.Contains(order, name) {
				cyc = append(cyc, name)
			}
		}
		return nil, fmt.Errorf("operators: pipeline %q: cycle through %s", p.name, strings.Join(cyc, ", "))
	}
	return order, nil
}

func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		if n == "" {
			q[i] = "the main output"
		} else {
			q[i] = fmt.Sprintf("%q", n)
		}
	}
	if len(q) == 0 {
		return "none"
	}
	return strings.Join(q, ", ")
}

// Build checks the graph, adds its operators to f (input first, then the
// nodes in topological order) and connects them. A node may be one a
// previous pipeline used (a reload keeping an operator's state): its
// outputs are disconnected first, and it is added to f again.
func (p *Pipeline[In, Out]) Build(f *Flow) error {
	if p.built {
		return fmt.Errorf("operators: pipeline %q: Build called twice", p.name)
	}
	order, err := p.check()
	if err != nil {
		return err
	}
	p.built = true
	p.in = NewSource[In](f, p.name+"."+InputNode)
	p.out = NewSink(p.name+"."+OutputNode, func(b []Out) { p.Out.Emit(b) })
	for _, name := range order {
		n := p.nodes[name]
		for _, port := range n.Outputs() {
			if pt, ok := n.Output(port); ok {
				pt.Disconnect()
			}
		}
		if err := f.Add(n); err != nil {
			return err
		}
	}
	_ = f.Add(p.out)
	for _, e := range p.edges {
		var port Port
		if e.from == InputNode {
			port = &p.in.Out
		} else {
			port, _ = p.nodes[e.from].Output(e.fromPort)
		}
		var in any
		if e.to == OutputNode {
			in = Inlet[Out](p.out)
		} else {
			in, _, _ = p.nodes[e.to].Input(e.toPort)
		}
		if err := port.ConnectAny(in); err != nil {
			return fmt.Errorf("operators: pipeline %q: edge %s: %w", p.name, e, err)
		}
	}
	return nil
}

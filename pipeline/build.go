package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"

	"streamd/operators"
	"streamd/state"
)

// Host is what a pipeline's outputs need from whoever runs it (the
// engine). Both methods are called on the pipeline's flow goroutine.
type Host interface {
	// Publish sends data (one JSON value) to every member of room.
	Publish(room string, data []byte) error
	// Reply sends data to ev's sender as a `result` of ev.Stream.
	Reply(ev *Event, data []byte)
}

// Options configures Build.
type Options struct {
	// Host serves the room and reply outputs. nil: they fail at Build
	// (Check uses a host that accepts everything).
	Host Host
	// Registry holds the ops nodes may use. Default DefaultRegistry().
	Registry *Registry
	// Logger gets the outputs' failures. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient posts webhooks. Default a client without timeout (each
	// webhook sets its own per attempt).
	HTTPClient *http.Client
	// Store keeps the state of stateful ops (session) so it survives
	// restarts. nil: each such node keeps an in-memory store of its own.
	Store *state.Store

	checkOnly bool // Check: build to validate, open nothing
}

func (o *Options) ensureDefaults() {
	if o.Registry == nil {
		o.Registry = DefaultRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
}

// Pipeline is a config pipeline built into operators on a flow.
type Pipeline struct {
	Spec  Spec
	Flow  *operators.Flow
	Graph *operators.Pipeline[Event, Event]
	nodes map[string]*built
	outs  []closer // outputs with resources (files, webhook workers)
	ck    *ckState // checkpointing (checkpoint.go); nil when off
}

type built struct {
	spec NodeSpec
	node operators.Node
	res  []closer
}

type closer interface{ Close() error }

// Input returns where the pipeline's events enter: Push on the flow's goroutine.
func (p *Pipeline) Input() *operators.Source[Event] { return p.Graph.Input() }

// Stream returns the stream the pipeline reads ("" for generator, file
// and stdin inputs).
func (p *Pipeline) Stream() string { return p.Spec.Input.Stream }

// Stats returns the pipeline's operators' stats.
func (p *Pipeline) Stats() []operators.StatsSnapshot { return p.Flow.Stats() }

// Close closes the outputs' resources (the flow's operators are closed
// by the flow). Flow goroutine only.
func (p *Pipeline) Close() error {
	var errs []error
	for _, c := range p.outs {
		errs = append(errs, c.Close())
	}
	for _, b := range p.nodes {
		for _, c := range b.res {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// BuildContext is what an op's builder gets.
type BuildContext struct {
	Spec *Spec
	Node *NodeSpec
	Opts *Options
	path string
	res  []closer
	ck   *ckState // the pipeline's checkpoint state; nil when it does not checkpoint
}

// Errorf returns an error pointing at key of the node in the config.
func (c *BuildContext) Errorf(key, format string, args ...any) error {
	p := c.path
	if key != "" {
		p += "." + key
	}
	return specError(c.Node.node, key, p, format, args...)
}

// Expr compiles the expression in field key (which must be set).
func (c *BuildContext) Expr(key, src string, bool_ bool) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, c.Errorf(key, "op %s needs %s", c.Node.Op, key)
	}
	k := kindAny
	if bool_ {
		k = kindBool
	}
	x, err := compileExpr(src, k)
	if err != nil {
		return nil, c.Errorf(key, "expression %q: %v", src, firstLine(err.Error()))
	}
	return x, nil
}

// OptExpr compiles the expression in field key, or returns nil when unset.
func (c *BuildContext) OptExpr(key, src string) (*Expr, error) {
	if src == "" {
		return nil, nil
	}
	return c.Expr(key, src, false)
}

// Keep registers a resource the node holds, closed with the pipeline.
func (c *BuildContext) Keep(r closer) { c.res = append(c.res, r) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Check compiles spec without running it: every error Build would
// report, with its place in the config.
func Check(spec Spec, opts Options) error {
	opts.Host = nopHost{}
	opts.checkOnly = true
	p, err := Build(spec, operators.NewFlow(operators.FlowOptions{Name: spec.Name}), opts, nil)
	if p != nil {
		_ = p.Close()
	}
	return err
}

type nopHost struct{}

func (nopHost) Publish(string, []byte) error { return nil }
func (nopHost) Reply(*Event, []byte)         {}

// Build compiles spec into operators on flow. When prev (the same
// pipeline before a reload) has a node with the same name and an
// identical definition, that node — with its state: open windows,
// dedup keys, buffers — is kept instead of built anew; prev's other
// nodes are removed from the flow. prev must have run on the same flow.
func Build(spec Spec, flow *operators.Flow, opts Options, prev *Pipeline) (*Pipeline, error) {
	opts.ensureDefaults()
	where := fmt.Sprintf("pipeline %q", spec.Name)
	if !operators.ValidName(spec.Name) {
		return nil, specError(spec.node, "name", "name", "pipeline name %q: use letters, digits, '_' and '-'", spec.Name)
	}
	if err := checkInput(&spec); err != nil {
		return nil, err
	}
	p := &Pipeline{Spec: spec, Flow: flow, Graph: operators.NewPipeline[Event, Event](spec.Name), nodes: make(map[string]*built)}
	if spec.Checkpoint < 0 {
		return nil, specError(spec.node, "checkpoint", where, "checkpoint: a negative interval")
	}
	if spec.Checkpoint > 0 {
		if prev != nil && prev.ck != nil {
			p.ck = prev.ck
		} else {
			p.ck = &ckState{pipeline: spec.Name}
		}
		if !opts.checkOnly {
			opts.Host = ckHost{Host: opts.Host, ck: p.ck}
		}
	}
	fail := func(err error) (*Pipeline, error) {
		_ = p.Close()
		return nil, err
	}
	if len(spec.Nodes) == 0 {
		return fail(specError(spec.node, "nodes", where, "has no nodes"))
	}
	seen := map[string]bool{}
	for i := range spec.Nodes {
		ns := &spec.Nodes[i]
		path := fmt.Sprintf("%s: nodes[%d]", where, i)
		if ns.Name == "" {
			return fail(specError(ns.node, "", path, "a node needs a name"))
		}
		path = fmt.Sprintf("%s: node %q", where, ns.Name)
		if !operators.ValidName(ns.Name) {
			return fail(specError(ns.node, "name", path, "bad node name: use letters, digits, '_' and '-' (not %q or %q)", operators.InputNode, operators.OutputNode))
		}
		if seen[ns.Name] {
			return fail(specError(ns.node, "name", path, "two nodes are called %q", ns.Name))
		}
		seen[ns.Name] = true
		if prev != nil {
			if old := prev.nodes[ns.Name]; old != nil && old.spec.equal(ns) {
				old.spec = *ns
				p.nodes[ns.Name] = old
				p.Graph.AddNode(ns.Name, old.node)
				continue
			}
		}
		def, ok := opts.Registry.ops[ns.Op]
		if !ok {
			return fail(specError(ns.node, "op", path, "unknown op %q (ops: %s)", ns.Op, strings.Join(opts.Registry.Names(), ", ")))
		}
		if err := checkFields(ns, &def, path); err != nil {
			return fail(err)
		}
		bc := &BuildContext{Spec: &spec, Node: ns, Opts: &opts, path: path, ck: p.ck}
		n, err := def.Build(bc)
		if err != nil {
			for _, r := range bc.res {
				_ = r.Close()
			}
			return fail(err)
		}
		p.nodes[ns.Name] = &built{spec: *ns, node: n, res: bc.res}
		p.Graph.AddNode(ns.Name, n)
	}
	if err := p.connect(where); err != nil {
		return fail(err)
	}
	if err := p.attachOutputs(where, &opts); err != nil {
		return fail(err)
	}
	if err := p.Graph.Validate(); err != nil {
		return fail(specError(spec.node, "nodes", where, "%v", strings.TrimPrefix(err.Error(), "operators: ")))
	}
	if prev != nil {
		// Drop what the old graph had and the new one does not keep.
		for name, b := range prev.nodes {
			if p.nodes[name] != b {
				_ = flow.Remove(b.node)
				for _, r := range b.res {
					_ = r.Close()
				}
			}
		}
		for _, o := range prev.Graph.Endpoints() {
			_ = flow.Remove(o)
		}
		for _, c := range prev.outs {
			_ = c.Close()
		}
	}
	if err := p.Graph.Build(flow); err != nil {
		return fail(specError(spec.node, "nodes", where, "%v", strings.TrimPrefix(err.Error(), "operators: ")))
	}
	return p, nil
}

// connect adds the edges: Spec.Edges, or the nodes in order.
func (p *Pipeline) connect(where string) error {
	spec := &p.Spec
	if len(spec.Edges) > 0 {
		for i, e := range spec.Edges {
			from, to, ok := parseEdge(e)
			if !ok {
				return specError(spec.node, "edges", fmt.Sprintf("%s: edges[%d]", where, i), "%q: want \"from -> to\"", e)
			}
			p.Graph.Connect(from, to)
		}
		return nil
	}
	prev := operators.InputNode
	for i, ns := range spec.Nodes {
		n := p.nodes[ns.Name].node
		p.Graph.Connect(prev, ns.Name)
		if len(n.Outputs()) == 0 { // a sink: it must end the chain
			if i != len(spec.Nodes)-1 {
				return specError(ns.node, "op", fmt.Sprintf("%s: node %q", where, ns.Name), "op %s is a sink and must be the last node (or use edges)", ns.Op)
			}
			return nil
		}
		prev = ns.Name
	}
	p.Graph.Connect(prev, operators.OutputNode)
	return nil
}

// checkFields reports a key written in ns's mapping that def does not
// take.
func checkFields(ns *NodeSpec, def *OpDef, path string) error {
	for _, k := range keysSet(ns.node) {
		if k != "name" && k != "op" && !slices.Contains(def.Fields, k) {
			return specError(ns.node, k, path, "field %q does not apply to op %s (it takes: %s)", k, ns.Op, strings.Join(def.Fields, ", "))
		}
	}
	return nil
}

// Registry holds the ops config nodes can name. Tests clone the default
// one and register their own.
type Registry struct {
	ops map[string]OpDef
}

// OpDef is one op: the fields it takes and how to build it.
type OpDef struct {
	// Doc is one line of semantics.
	Doc string
	// Fields are the node keys the op takes besides name and op.
	Fields []string
	// Build returns the node, or an error made with c.Errorf.
	Build func(c *BuildContext) (operators.Node, error)
}

// Register adds or replaces an op.
func (r *Registry) Register(name string, def OpDef) { r.ops[name] = def }

// Clone returns a copy that can be changed without touching r.
func (r *Registry) Clone() *Registry {
	c := &Registry{ops: make(map[string]OpDef, len(r.ops))}
	for k, v := range r.ops {
		c.ops[k] = v
	}
	return c
}

// Names lists the ops, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.ops))
	for k := range r.ops {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Doc returns an op's one-line doc.
func (r *Registry) Doc(name string) string { return r.ops[name].Doc }

// DefaultRegistry returns a registry holding the built-in ops.
func DefaultRegistry() *Registry {
	r := &Registry{ops: make(map[string]OpDef)}
	registerBuiltins(r)
	return r
}

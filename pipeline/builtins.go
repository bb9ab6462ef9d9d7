package pipeline

import (
	"fmt"
	"maps"

	"streamd/operators"
)

// extraBuiltins are registered by the other builtins_*.go files.
var extraBuiltins []func(*Registry)

// registerBuiltins adds the built-in ops (docs/pipelines.md documents
// each with an example).
func registerBuiltins(r *Registry) {
	for _, reg := range extraBuiltins {
		reg(r)
	}
	r.Register("filter", OpDef{
		Doc:    "passes the events for which the expression `if` is true, drops the rest",
		Fields: []string{"if"},
		Build:  buildFilter,
	})
	r.Register("map", OpDef{
		Doc:    "sets fields of data (`set: {field: expr}`) or replaces data (`to: expr`); other fields are kept byte for byte; failures leave on the `error` port",
		Fields: []string{"set", "to", "concurrency", "ordered", "retry"},
		Build:  buildMap,
	})
	r.Register("room", OpDef{
		Doc:    "sink: publishes each event's data into `room`",
		Fields: []string{"room"},
		Build: func(c *BuildContext) (operators.Node, error) {
			return buildSink(c, &OutputSpec{Room: c.Node.Room}, "room")
		},
	})
	r.Register("reply", OpDef{
		Doc:   "sink: sends each event back to its sender as a `result`",
		Build: func(c *BuildContext) (operators.Node, error) { return buildSink(c, &OutputSpec{Reply: true}, "") },
	})
	r.Register("log", OpDef{
		Doc:    "sink: appends each event as a JSON line to `path` (\"-\" is stdout)",
		Fields: []string{"path"},
		Build: func(c *BuildContext) (operators.Node, error) {
			return buildSink(c, &OutputSpec{Log: c.Node.Path}, "path")
		},
	})
	r.Register("webhook", OpDef{
		Doc:    "sink: POSTs each event's data to `webhook.url`, with timeouts and retries",
		Fields: []string{"webhook"},
		Build: func(c *BuildContext) (operators.Node, error) {
			if c.Node.Webhook == nil {
				return nil, c.Errorf("", "op webhook needs webhook: {url: …}")
			}
			return buildSink(c, &OutputSpec{Webhook: c.Node.Webhook}, "webhook")
		},
	})
}

func buildFilter(c *BuildContext) (operators.Node, error) {
	x, err := c.Expr("if", c.Node.If, true)
	if err != nil {
		return nil, err
	}
	var f *operators.Filter[Event]
	rep := c.reporter(func() *operators.Stats { return f.Stats() })
	f = operators.NewFilter(c.Node.Name, func(ev Event) bool {
		ok, err := x.Bool(&ev)
		if err != nil {
			rep.fail(err, "if (the event is dropped)")
		}
		return ok
	})
	return f, nil
}

// mapFunc compiles a map node's set/to into one function.
func mapFunc(c *BuildContext) (func(Event) (Event, error), error) {
	ns := c.Node
	switch {
	case len(ns.Set) > 0 && ns.To != "":
		return nil, c.Errorf("to", "give set or to, not both")
	case ns.To != "":
		x, err := c.Expr("to", ns.To, false)
		if err != nil {
			return nil, err
		}
		return func(ev Event) (Event, error) {
			b, v, err := x.JSON(&ev)
			if err != nil {
				return ev, err
			}
			return ev.WithData(b, v), nil
		}, nil
	case len(ns.Set) > 0:
		keys := make([]string, len(ns.Set))
		xs := make([]*Expr, len(ns.Set))
		for i, it := range ns.Set {
			k, ok := it.Key.(string)
			if !ok || !operators.ValidName(k) {
				return nil, c.Errorf("set", "field name %v: use letters, digits, '_' and '-'", it.Key)
			}
			src, ok := it.Value.(string)
			if !ok {
				src = fmt.Sprint(it.Value) // a YAML number or bool is a constant expression
			}
			x, err := c.Expr("set", src, false)
			if err != nil {
				return nil, err
			}
			keys[i], xs[i] = k, x
		}
		return func(ev Event) (Event, error) {
			vals := make([][]byte, len(xs))
			base, _ := ev.Value()
			old, _ := base.(map[string]any)
			nm := maps.Clone(old) // copies the table in bulk
			if nm == nil {
				nm = make(map[string]any, len(xs))
			}
			for i, x := range xs {
				b, v, err := x.JSON(&ev)
				if err != nil {
					return ev, fmt.Errorf("set %s: %w", keys[i], err)
				}
				vals[i] = b
				nm[keys[i]] = v
			}
			return ev.WithData(setFields(ev.Data, keys, vals), nm), nil
		}, nil
	}
	return nil, c.Errorf("", "op map needs set: {field: expression} or to: expression")
}

func buildSink(c *BuildContext, o *OutputSpec, key string) (operators.Node, error) {
	fn, cl, err := newOutput(o, c.Spec.Name, c.Opts)
	if err != nil {
		return nil, c.Errorf(key, "%v", err)
	}
	if cl != nil {
		c.Keep(cl)
	}
	return operators.NewSink(c.Node.Name, fn), nil
}

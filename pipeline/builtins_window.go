package pipeline

import (
	"math"
	"strconv"

	"streamd/operators"
)

func init() { extraBuiltins = append(extraBuiltins, registerWindows) }

func registerWindows(r *Registry) {
	r.Register("aggregate", OpDef{
		Doc: "computes `fn` (count, sum, avg, min, max, pNN) of `field` per `key` over windows (count, tumbling, sliding, session), " +
			"on processing time or on event time (`time`), with `out_of_order` and `lateness`; events too late leave on the `late` port",
		Fields: []string{"key", "field", "fn", "window", "time", "lateness", "out_of_order"},
		Build:  buildAggregate,
	})
	r.Register("window", OpDef{
		Doc:    "groups events into windows of `count` events or of `duration` (aligned to the clock), emitting one event whose data is the array of their data",
		Fields: []string{"count", "duration"},
		Build: func(c *BuildContext) (operators.Node, error) {
			w, err := operators.NewWindower[Event](c.Node.Name, operators.WindowOptions{Count: c.Node.Count, Every: c.Node.Duration})
			if err != nil {
				return nil, c.Errorf("", "%v", err)
			}
			return adapt(w, joinEvents), nil
		},
	})
}

func buildAggregate(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	w := ns.Window
	if w == nil {
		return nil, c.Errorf("window", "op aggregate needs window: {count: N} | {tumbling: D} | {sliding: {size: D, slide: D}} | {session: GAP}")
	}
	var spec operators.WindowSpec
	kinds := 0
	if w.Count > 0 {
		spec, kinds = operators.EveryN(w.Count), kinds+1
	}
	if w.Tumbling > 0 {
		spec, kinds = operators.Tumbling(w.Tumbling), kinds+1
	}
	if w.Sliding != nil {
		spec, kinds = operators.Sliding(w.Sliding.Size, w.Sliding.Slide), kinds+1
	}
	if w.Session > 0 {
		spec, kinds = operators.Session(w.Session), kinds+1
	}
	if kinds != 1 {
		return nil, c.Errorf("window", "give exactly one of count, tumbling, sliding, session (with a value > 0)")
	}
	opts := operators.AggregateOptions[Event, string]{Window: spec, OutOfOrder: ns.OutOfOrder, AllowedLateness: ns.Lateness}
	fns := ns.Fn
	if len(fns) == 0 {
		fns = stringList{"count"}
	}
	onlyCount := true
	for _, name := range fns {
		fn, err := operators.ParseAggFn(name)
		if err != nil {
			return nil, c.Errorf("fn", "%v", err)
		}
		opts.Fns = append(opts.Fns, fn)
		if name != "count" {
			onlyCount = false
		}
	}
	key, err := c.OptExpr("key", ns.Key)
	if err != nil {
		return nil, err
	}
	if key != nil {
		opts.Key = keyFunc(key)
	}
	if ns.Field == "" && !onlyCount {
		return nil, c.Errorf("fn", "fn %v needs field: the expression of the value to aggregate", []string(fns))
	}
	if ns.Field != "" {
		field, err := c.Expr("field", ns.Field, false)
		if err != nil {
			return nil, err
		}
		rep := c.reporter(func() *operators.Stats { return nil }) // the aggregator counts NaNs
		opts.Value = func(ev Event) float64 {
			v, err := field.Float(&ev)
			if err != nil {
				rep.note(err, "field (the event is skipped)")
				return math.NaN() // skipped, counted in the node's errors
			}
			return v
		}
	}
	if ns.Time != "" {
		tx, err := c.Expr("time", ns.Time, false)
		if err != nil {
			return nil, err
		}
		opts.EventTime = func(ev Event) int64 {
			t, err := tx.Time(&ev)
			if err != nil {
				return ev.Time // no usable time field: its arrival time
			}
			return t
		}
	} else if ns.Lateness != 0 || ns.OutOfOrder != 0 {
		return nil, c.Errorf("lateness", "lateness and out_of_order apply to event time: set time: EXPRESSION")
	}
	agg, err := operators.NewAggregator(ns.Name, opts)
	if err != nil {
		return nil, c.Errorf("window", "%v", err)
	}
	a := adapt(agg, windowEvent)
	if c.ck != nil {
		return aggNode{adapted: a, agg: agg}, nil
	}
	return a, nil
}

// windowEvent turns a window result into an event: data is
// {"key":K,"start":MS,"end":MS,"FN":V,…} (times in Unix milliseconds, one
// member per fn, "update":true when a late event changed a window
// already emitted); its time is the window's end, its key the key.
func windowEvent(r operators.WindowResult[string]) Event {
	b := make([]byte, 0, 64+24*len(r.Values))
	b = append(b, `{"key":`...)
	b = appendJSONString(b, r.Key)
	b = append(b, `,"start":`...)
	b = strconv.AppendInt(b, r.Start/1e6, 10)
	b = append(b, `,"end":`...)
	b = strconv.AppendInt(b, r.End/1e6, 10)
	for i, name := range r.Names {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendFloat(b, r.Values[i])
	}
	if r.Update {
		b = append(b, `,"update":true`...)
	}
	b = append(b, '}')
	ev := NewEvent("", b, r.End)
	ev.Key = r.Key
	return ev
}

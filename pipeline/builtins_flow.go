package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"streamd/operators"
)

func init() { extraBuiltins = append(extraBuiltins, registerFlowOps) }

func registerFlowOps(r *Registry) {
	r.Register("router", OpDef{
		Doc:    "sends each event to the route whose `if` matches first (`mode: all`: to every match); events no route takes leave on the main output (the default route)",
		Fields: []string{"routes", "mode"},
		Build:  buildRouter,
	})
	r.Register("flat_map", OpDef{
		Doc:    "evaluates `each` (an array) and emits one event per element, with the element as data",
		Fields: []string{"each"},
		Build:  buildFlatMap,
	})
	r.Register("catch_error", OpDef{
		Doc:    "takes the error records of a fallible node's `error` port ({error, node, attempts, data}) and passes them on, or recovers them with `to: expression`",
		Fields: []string{"to"},
		Build:  buildCatchError,
	})
	r.Register("merge", OpDef{
		Doc:   "passes on the events of every edge into it, as one stream",
		Build: func(c *BuildContext) (operators.Node, error) { return operators.NewMerge[Event](c.Node.Name), nil },
	})
	r.Register("share", OpDef{
		Doc:   "passes its input on to every node connected to it (any node's output can be shared; this names the fan-out point)",
		Build: func(c *BuildContext) (operators.Node, error) { return operators.NewShare[Event](c.Node.Name), nil },
	})
	r.Register("combine_latest", OpDef{
		Doc:   "two inputs, `NODE.left` and `NODE.right`: once both have had an event, each new event emits {\"left\": latest left data, \"right\": latest right data}",
		Build: buildCombineLatest,
	})
	r.Register("zip", OpDef{
		Doc:    "two inputs, `NODE.left` and `NODE.right`: pairs the n-th left with the n-th right as {\"left\":…,\"right\":…}; each side waits for at most `max` events (default 1024, newest dropped)",
		Fields: []string{"max"},
		Build:  buildZip,
	})
}

func buildRouter(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	opts := operators.RouterOptions[Event]{}
	switch ns.Mode {
	case "", "first":
	case "all":
		opts.Mode = operators.RouteAll
	default:
		return nil, c.Errorf("mode", "mode %q: want first or all", ns.Mode)
	}
	if len(ns.Routes) == 0 {
		return nil, c.Errorf("routes", "op router needs routes: [{name: N, if: expression}, …]")
	}
	var rt *operators.Router[Event]
	rep := c.reporter(func() *operators.Stats { return rt.Stats() })
	for i, r := range ns.Routes {
		if !operators.ValidName(r.Name) || r.Name == operators.DefaultRoute {
			return nil, c.Errorf("routes", "routes[%d]: name %q: use letters, digits, '_' and '-' (%q is the main output)", i, r.Name, operators.DefaultRoute)
		}
		x, err := c.Expr("routes", r.If, true)
		if err != nil {
			return nil, err
		}
		opts.Rules = append(opts.Rules, operators.RouteRule[Event]{Name: r.Name, Match: func(ev Event) bool {
			ok, err := x.Bool(&ev)
			if err != nil {
				rep.fail(err, "route "+r.Name+" (not taken)")
			}
			return ok
		}})
	}
	var err error
	rt, err = operators.NewRouter(ns.Name, opts)
	if err != nil {
		return nil, c.Errorf("routes", "%v", err)
	}
	return rt, nil
}

func buildFlatMap(c *BuildContext) (operators.Node, error) {
	x, err := c.Expr("each", c.Node.Each, false)
	if err != nil {
		return nil, err
	}
	var fm *operators.FlatMap[Event, Event]
	rep := c.reporter(func() *operators.Stats { return fm.Stats() })
	fm = operators.NewFlatMap(c.Node.Name, func(dst []Event, ev Event) []Event {
		v, err := x.run(&ev)
		if err != nil {
			rep.fail(err, "each (the event is dropped)")
			return dst
		}
		items, ok := v.([]any)
		if !ok {
			if v != nil {
				rep.fail(fmt.Errorf("each gave %T, not an array", v), "each (the event is dropped)")
			}
			return dst
		}
		for _, it := range items {
			b, err := marshal(it)
			if err != nil {
				rep.fail(err, "each element (dropped)")
				continue
			}
			dst = append(dst, ev.WithData(b, it))
		}
		return dst
	})
	return fm, nil
}

// errorEvent turns a failure into an event: data is
// {"error": message, "node": name, "attempts": n, "data": the event's data}.
func errorEvent(f operators.Failed[Event]) Event {
	return errorRecord(f.Event, f.Err.Error(), "", 0, f.Node, f.Attempts)
}

// errorRecord wraps ev's data in the record an `error` port emits:
// {"error","reason"?,"status"?,"node","attempts","data"} (reason and
// status only when set: a model call's failure kind and HTTP status).
func errorRecord(ev Event, msg, reason string, status int, node string, attempts int) Event {
	b := make([]byte, 0, len(ev.Data)+128)
	b = append(b, `{"error":`...)
	b = appendJSONString(b, firstLine(msg))
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
	}
	if status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, `,"node":`...)
	b = appendJSONString(b, node)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(attempts), 10)
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	b = append(b, '}')
	return ev.WithData(b, nil)
}

// buildMap builds a map: in place (a TryMap), with retries (Retry), or on
// goroutines (ConcurrentMap). Failures leave on the "error" port as error
// records.
func buildMap(c *BuildContext) (operators.Node, error) {
	fn, err := mapFunc(c)
	if err != nil {
		return nil, err
	}
	ns := c.Node
	var inner operators.Node
	switch {
	case ns.Concurrency.Set():
		opts, err := concurrencyOptions(c)
		if err != nil {
			return nil, err
		}
		if ns.Retry != nil {
			return nil, c.Errorf("retry", "retry and concurrency together are not supported: pick one")
		}
		// each worker goroutine gets its own expression VMs
		var pool sync.Pool
		pool.New = func() any {
			f, _ := mapFunc(c)
			return f
		}
		cm, err := operators.NewConcurrentMap(ns.Name, func(_ context.Context, ev Event) (Event, error) {
			f := pool.Get().(func(Event) (Event, error))
			defer pool.Put(f)
			return f(ev)
		}, opts)
		if err != nil {
			return nil, c.Errorf("concurrency", "%v", err)
		}
		inner = cm
	case ns.Ordered != nil:
		return nil, c.Errorf("ordered", "ordered applies only with concurrency")
	case ns.Retry != nil:
		r := ns.Retry
		rm, err := operators.NewRetry(ns.Name, fn, operators.RetryOptions{MaxAttempts: r.Attempts, Initial: r.Backoff, Max: r.MaxDelay})
		if err != nil {
			return nil, c.Errorf("retry", "%v", err)
		}
		inner = rm
	default:
		inner = operators.NewTryMap(ns.Name, fn)
	}
	a := adapt(inner, passThrough)
	rep := c.reporter(func() *operators.Stats { return nil }) // the map counted it
	convertPort(a, operators.ErrorPort, func(f operators.Failed[Event]) Event {
		ev := errorEvent(f)
		if p, _ := a.Output(operators.ErrorPort); !p.Connected() {
			rep.note(f.Err, "map (nothing reads its error port: the event is dropped)")
		}
		return ev
	})
	return a, nil
}

// concurrencyOptions checks a map's `concurrency` (and `ordered`) and
// turns it into the concurrent map's options: N workers and 4·N events in
// flight, or an adaptive pool of min…max workers and 4·max events in
// flight (max-1+high if that is more, so the queue can reach high).
func concurrencyOptions(c *BuildContext) (operators.ConcurrencyOptions, error) {
	cs := &c.Node.Concurrency
	ordered := true
	if c.Node.Ordered != nil {
		ordered = *c.Node.Ordered
	}
	// errorf points at key inside the mapping, or at `concurrency`.
	errorf := func(key, format string, args ...any) error {
		if cs.node == nil || key == "" {
			return c.Errorf("concurrency", format, args...)
		}
		return specError(cs.node, key, c.path+".concurrency."+key, format, args...)
	}
	if !cs.Adaptive {
		if cs.N < 1 || cs.N > operators.MaxWorkers {
			return operators.ConcurrencyOptions{}, errorf("", "%d workers: want 1 to %d, or a range {min: 1, max: 8}", cs.N, operators.MaxWorkers)
		}
		return operators.ConcurrencyOptions{Concurrency: cs.N, Ordered: ordered, MaxInFlight: 4 * cs.N}, nil
	}
	a := operators.AdaptiveConcurrency{Min: cs.Min, Max: cs.Max, High: cs.High, Low: cs.Low, Every: cs.Every}
	set := keysSet(cs.node)
	switch {
	case cs.Min < 1 && (cs.Min != 0 || slices.Contains(set, "min")):
		return operators.ConcurrencyOptions{}, errorf("min", "min %d: must be at least 1", cs.Min)
	case cs.Min == 0:
		a.Min = 1
	}
	switch {
	case cs.Max == 0 && !slices.Contains(set, "max"):
		return operators.ConcurrencyOptions{}, errorf("", "a range needs max: {min: %d, max: N}", a.Min)
	case cs.Max < a.Min:
		return operators.ConcurrencyOptions{}, errorf("max", "max %d is below min %d", cs.Max, a.Min)
	case cs.Max > operators.MaxWorkers:
		return operators.ConcurrencyOptions{}, errorf("max", "max %d: at most %d", cs.Max, operators.MaxWorkers)
	case cs.High < 0:
		return operators.ConcurrencyOptions{}, errorf("high", "high %d: must not be negative (0 or unset: as many as there are workers)", cs.High)
	case cs.Low < 0:
		return operators.ConcurrencyOptions{}, errorf("low", "low %d: must not be negative", cs.Low)
	case cs.High > 0 && cs.Low >= cs.High:
		return operators.ConcurrencyOptions{}, errorf("low", "low %d must be below high %d", cs.Low, cs.High)
	case cs.High == 0 && cs.Low >= a.Min:
		return operators.ConcurrencyOptions{}, errorf("low", "low %d must be below high, which is the number of workers when unset (so as low as min %d): set high", cs.Low, a.Min)
	case cs.Every < 0 || cs.Every > 0 && cs.Every < time.Millisecond:
		return operators.ConcurrencyOptions{}, errorf("every", "every %v: must be at least 1ms (unset: 100ms)", cs.Every)
	}
	opts := operators.ConcurrencyOptions{Ordered: ordered, MaxInFlight: max(4*a.Max, a.Max-1+a.High), Adaptive: &a}
	return opts, nil
}

func buildCatchError(c *BuildContext) (operators.Node, error) {
	if c.Node.To == "" {
		return operators.NewShare[Event](c.Node.Name), nil // pass the records on
	}
	fn, err := mapFunc(c)
	if err != nil {
		return nil, err
	}
	var m *operators.Map[Event, Event]
	rep := c.reporter(func() *operators.Stats { return m.Stats() })
	m = operators.NewMap(c.Node.Name, func(ev Event) Event {
		out, err := fn(ev)
		if err != nil {
			rep.fail(err, "to (the record is passed on unchanged)")
			return ev
		}
		return out
	})
	return m, nil
}

func pairData(a, b Event) Event {
	d := make([]byte, 0, len(a.Data)+len(b.Data)+20)
	d = append(d, `{"left":`...)
	d = append(d, a.Data...)
	d = append(d, `,"right":`...)
	d = append(d, b.Data...)
	d = append(d, '}')
	ev := NewEvent(a.Stream, d, max(a.Time, b.Time))
	return ev
}

func buildCombineLatest(c *BuildContext) (operators.Node, error) {
	return operators.NewCombineLatest(c.Node.Name, pairData), nil
}

func buildZip(c *BuildContext) (operators.Node, error) {
	z, err := operators.NewZip(c.Node.Name, pairData, operators.ZipOptions{MaxQueue: c.Node.Max})
	if err != nil {
		return nil, c.Errorf("max", "%v", err)
	}
	return z, nil
}

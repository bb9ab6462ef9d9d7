// Package operators is streamd's stream-processing core: the operator
// model, the built-in operators, the pipeline graph and the typed fluent
// API. It must never import netpoll/ (nor engine/): the engine feeds it,
// not the other way round.
//
// # Model
//
// A Flow is a single-goroutine runtime: one Clock, one timer queue
// (Timers), one completion queue (Post). Operators belong to one flow and
// run only on its goroutine, so they keep their state in plain fields, with
// no locks and no atomics except their Stats counters.
//
// Events move in batches: an operator's Inlet gets a []T, processes it,
// and hands a batch to its Outlet, which pushes it into every connected
// inlet, synchronously. A batch belongs to its sender and is valid only
// during the call; an operator that keeps an event copies it. Stateless
// operators (filter, map, router, …) write their output into a buffer they
// reuse, so once warm they allocate nothing per event.
//
// Time comes only from the flow's Clock. Time-based operators (windows,
// debounce, throttle, buffer_time, retry, …) set timers with Flow.At or
// Flow.After and are called back by Flow.Advance; with a FakeClock a test
// moves time by hand and calls Advance. There is no timer cancel: an
// operator that re-arms keeps a generation number in the timer's arg.
//
// Every operator has Stats: in, out, dropped, errors and late counters,
// updated once per batch, and an HDR histogram of the time it spent per
// event (its own time, not its downstream's).
//
// # Two ways to build
//
// The fluent API chains typed operators on a Stream:
//
//	src := operators.NewSource[Tick](flow, "ticks")
//	src.Stream().Filter(hot).Debounce(time.Second).Subscribe(show)
//
// Type-changing operators are functions (MapTo, Buffer, Aggregate,
// ZipWith, …): Go methods cannot have their own type parameters.
//
// The graph API names nodes and connects them, and checks the graph
// (unknown names, type mismatches, cycles, dangling nodes) in Build:
//
//	p := operators.NewPipeline[Tick, Alert]("alerts")
//	p.AddNode("hot", operators.NewFilter("hot", hot)).
//		Connect("input", "hot").Connect("hot", "output")
//
// Config pipelines (streamd/pipeline) are graphs of these same operators
// over pipeline.Event, with expr-lang predicates compiled once.
//
// # Why not samber/ro
//
// samber/ro (v0.3.0) is a well-made generics ReactiveX, and its operator
// names are ours. We do not build on it because its model is one value
// per call through an Observer interface with a context per notification,
// a subscriber that takes a mutex per value by default and recovers panics
// per value, and time operators on real timers (time.AfterFunc, tickers)
// that tests cannot drive with a fake clock. streamd's operators are
// batch-first, single-goroutine, lock-free and clock-injected, which is
// what the hot path and deterministic tests need.
package operators

package operators_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"streamd/operators"
)

// A router in a graph: each rule is an output port ("r.high"), the main
// output ("r") takes what no rule does.
func ExampleNewRouter() {
	type order struct {
		ID    string
		Total int
	}
	r, err := operators.NewRouter("r", operators.RouterOptions[order]{
		Rules: []operators.RouteRule[order]{
			{Name: "high", Match: func(o order) bool { return o.Total >= 1000 }},
			{Name: "mid", Match: func(o order) bool { return o.Total >= 100 }},
		},
	})
	if err != nil {
		panic(err)
	}
	p := operators.NewPipeline[order, string]("orders")
	p.AddNode("r", r).
		AddNode("review", operators.NewMap("review", func(o order) string { return "review " + o.ID })).
		AddNode("ship", operators.NewMap("ship", func(o order) string { return "ship " + o.ID })).
		Connect("input", "r").
		Connect("r.high", "review").Connect("r.mid", "ship").Connect("r", "ship").
		Connect("review", "output").Connect("ship", "output")
	p.Out.Connect(operators.InletFunc[string](func(b []string) { fmt.Println(b) }))

	f := operators.NewFlow(operators.FlowOptions{})
	if err := p.Build(f); err != nil {
		panic(err)
	}
	_ = f.Open()
	p.Input().Push([]order{{"a", 5000}, {"b", 150}, {"c", 20}, {"d", 1200}})
	// Output:
	// [review a review d]
	// [ship b]
	// [ship c]
}

// The fluent router: RouteAll sends an event to every rule it matches.
func ExampleRoute() {
	f := operators.NewFlow(operators.FlowOptions{})
	src := operators.NewSource[int](f, "n")
	rs := operators.Route(src.Stream(), operators.RouterOptions[int]{
		Mode: operators.RouteAll,
		Rules: []operators.RouteRule[int]{
			{Name: "even", Match: func(n int) bool { return n%2 == 0 }},
			{Name: "big", Match: func(n int) bool { return n > 10 }},
		},
	})
	rs.Get("even").Subscribe(func(n int) { fmt.Println("even", n) })
	rs.Get("big").Subscribe(func(n int) { fmt.Println("big", n) })
	rs.Default().Subscribe(func(n int) { fmt.Println("other", n) })
	if err := f.Open(); err != nil {
		panic(err)
	}
	src.Push([]int{12, 3, 4})
	// Output:
	// even 12
	// even 4
	// big 12
	// other 3
}

// FlatMapTo's function appends to a buffer the operator reuses.
func ExampleFlatMapTo() {
	f := operators.NewFlow(operators.FlowOptions{})
	lines := operators.NewSource[string](f, "lines")
	operators.FlatMapTo(lines.Stream(), func(dst []string, line string) []string {
		return append(dst, strings.Fields(line)...)
	}).SubscribeBatch(func(words []string) { fmt.Println(len(words), words) })
	_ = f.Open()
	lines.Push([]string{"to be", "or not", "", "to be"})
	// Output: 6 [to be or not to be]
}

// A failing stage's errors go to its error port as Failed events: recover
// some with Catch, merge them back, and dead-letter the rest.
func ExampleTryMapTo() {
	f := operators.NewFlow(operators.FlowOptions{})
	src := operators.NewSource[string](f, "raw")
	parsed, failed := operators.TryMapTo(src.Stream(), strconv.Atoi)
	fixed, dead := operators.Catch(failed, func(e operators.Failed[string]) (int, bool) {
		return 0, e.Event == "" // an empty field means 0
	})
	parsed.Merge(fixed).Subscribe(func(n int) { fmt.Println("value", n) })
	dead.Subscribe(func(e operators.Failed[string]) {
		fmt.Printf("dead letter %q from %s after %d attempt(s)\n", e.Event, e.Node, e.Attempts)
	})
	_ = f.Open()
	src.Push([]string{"7", "", "x1", "42"})
	// Output:
	// value 7
	// value 42
	// value 0
	// dead letter "x1" from try_map-2 after 1 attempt(s)
}

// Retries wait on flow timers, so a fake clock drives them.
func ExampleRetryMap() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[string](f, "keys")
	calls := map[string]int{}
	lookup := func(k string) (string, error) {
		calls[k]++
		if calls[k] < 3 { // fails twice
			return "", errors.New("unavailable")
		}
		return strings.ToUpper(k), nil
	}
	ok, failed := operators.RetryMap(src.Stream(), lookup, operators.RetryOptions{
		MaxAttempts: 3, Initial: time.Second, Multiplier: 2,
	})
	ok.Subscribe(func(v string) { fmt.Printf("%v: %s\n", time.Duration(clk.Now()), v) })
	failed.Subscribe(func(e operators.Failed[string]) { fmt.Println("failed", e.Event) })
	_ = f.Open()
	src.PushOne("k")
	for range 3 {
		clk.Add(time.Second)
		f.Advance()
	}
	// Output: 3s: K
}

// A concurrent map runs the function on worker goroutines; Ordered keeps
// the input order. Drain waits for the events in flight.
func ExampleMapConcurrent() {
	f := operators.NewFlow(operators.FlowOptions{})
	src := operators.NewSource[int](f, "ids")
	ok, failed := operators.MapConcurrent(src.Stream(), func(ctx context.Context, id int) (string, error) {
		time.Sleep(time.Duration(5-id) * 10 * time.Millisecond) // later ids finish first
		if id == 3 {
			return "", errors.New("not found")
		}
		return fmt.Sprint("user-", id), nil
	}, operators.ConcurrencyOptions{Concurrency: 4, Ordered: true})
	ok.Subscribe(func(s string) { fmt.Println(s) })
	failed.Subscribe(func(e operators.Failed[int]) { fmt.Println("failed", e.Event, e.Err) })
	_ = f.Open()
	src.Push([]int{1, 2, 3, 4})
	f.Drain()
	_ = f.Close()
	// Output:
	// user-1
	// user-2
	// user-4
	// failed 3 not found
}

// An adaptive pool grows while events wait for a worker and shrinks once
// they stop coming; its size is the "workers" gauge of its stats. A fake
// clock drives the sampling here (a real flow's timers do it on their own).
func ExampleAdaptiveConcurrency() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[int](f, "jobs")
	gate := make(chan struct{}) // the calls wait until it closes
	var running atomic.Int32
	ok, _ := operators.MapConcurrent(src.Stream(), func(ctx context.Context, n int) (int, error) {
		running.Add(1)
		<-gate
		return n * n, nil
	}, operators.ConcurrencyOptions{Ordered: true, Adaptive: &operators.AdaptiveConcurrency{
		Min: 1, Max: 4, High: 2, Every: 100 * time.Millisecond, Quiet: 2,
	}})
	sum := 0
	ok.Subscribe(func(sq int) { sum += sq })
	_ = f.Open()
	workers := func() int64 { return f.Stats()[1].Gauges["workers"] }
	period := func() {
		for int64(running.Load()) < workers() { // let the new workers take their calls
			time.Sleep(time.Millisecond)
		}
		clk.Add(100 * time.Millisecond)
		f.Advance()
	}

	src.Push([]int{1, 2, 3, 4, 5, 6, 7, 8}) // a burst: 7 wait for the one worker
	var sizes []int64
	for range 4 {
		period()
		sizes = append(sizes, workers())
	}
	fmt.Println("burst:", sizes)
	close(gate)
	f.Drain()
	fmt.Println("sum of squares:", sum)
	sizes = sizes[:0]
	for range 7 { // the queue stays empty: one worker goes every 2 periods
		clk.Add(100 * time.Millisecond)
		f.Advance()
		sizes = append(sizes, workers())
	}
	fmt.Println("quiet:", sizes)
	_ = f.Close()
	// Output:
	// burst: [1 2 3 4]
	// sum of squares: 204
	// quiet: [4 4 3 3 2 2 1]
}

// Zip pairs the i-th left event with the i-th right one; in a graph its
// inputs are "z.left" and "z.right".
func ExampleNewZip() {
	z, err := operators.NewZip("z", func(n int, s string) string { return fmt.Sprint(s, n) }, operators.ZipOptions{})
	if err != nil {
		panic(err)
	}
	p := operators.NewPipeline[int, string]("pairs")
	p.AddNode("z", z).
		AddNode("label", operators.NewMap("label", func(n int) string { return string(rune('a' + n)) })).
		Connect("input", "label").Connect("input", "z.left").Connect("label", "z.right").
		Connect("z", "output")
	p.Out.Connect(operators.InletFunc[string](func(b []string) { fmt.Println(b) }))
	f := operators.NewFlow(operators.FlowOptions{})
	if err := p.Build(f); err != nil {
		panic(err)
	}
	_ = f.Open()
	p.Input().Push([]int{0, 1, 2})
	// Output: [a0 b1 c2]
}

// CombineLatest emits, once both sides have a value, on every new event.
func ExampleCombineLatestWith() {
	f := operators.NewFlow(operators.FlowOptions{})
	bids := operators.NewSource[float64](f, "bids")
	asks := operators.NewSource[float64](f, "asks")
	operators.CombineLatestWith(bids.Stream(), asks.Stream(), func(bid, ask float64) float64 { return ask - bid }).
		Subscribe(func(spread float64) { fmt.Printf("spread %.2f\n", spread) })
	_ = f.Open()
	bids.PushOne(99.5) // no ask yet
	asks.PushOne(100.25)
	bids.PushOne(99.75)
	// Output:
	// spread 0.75
	// spread 0.50
}

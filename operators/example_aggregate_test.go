package operators_test

import (
	"fmt"
	"time"

	"streamd/operators"
)

// aggReq is the event of the aggregate examples: a request's route, its
// latency and when it was served.
type aggReq struct {
	Route  string
	Millis float64
	At     time.Duration // since the epoch
}

// Aggregate on processing time: tumbling one-second windows per route,
// fired by the flow's timers as the (fake) clock passes their end.
func ExampleAggregate() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[aggReq](f, "requests")
	res, _, err := operators.Aggregate(src.Stream(), operators.AggregateOptions[aggReq, string]{
		Window: operators.Tumbling(time.Second),
		Key:    func(r aggReq) string { return r.Route },
		Value:  func(r aggReq) float64 { return r.Millis },
		Fns:    []operators.AggFn{operators.AggAvg(), operators.AggMax(), operators.AggPercentile(50)},
	})
	if err != nil {
		panic(err)
	}
	res.Subscribe(func(r operators.WindowResult[string]) {
		fmt.Printf("%s [%v,%v) n=%d", r.Key, time.Duration(r.Start), time.Duration(r.End), r.Count)
		for i, name := range r.Names {
			fmt.Printf(" %s=%g", name, r.Values[i])
		}
		fmt.Println()
	})
	_ = f.Open()

	src.Push([]aggReq{{"/a", 10, 0}, {"/b", 50, 0}, {"/a", 30, 0}})
	clk.Add(600 * time.Millisecond)
	f.Advance()
	src.PushOne(aggReq{"/a", 20, 0})
	clk.Add(400 * time.Millisecond) // 1s: the first windows fire
	f.Advance()
	src.PushOne(aggReq{"/b", 70, 0})
	f.Drain() // the open window is emitted at drain
	// Output:
	// /a [0s,1s) n=3 avg=20 max=30 p50=20
	// /b [0s,1s) n=1 avg=50 max=50 p50=50
	// /b [1s,2s) n=1 avg=70 max=70 p50=70
}

// Aggregate on event time: the watermark trails the newest event by
// OutOfOrder, windows stay open AllowedLateness longer for updates, and
// events later than that go to the late stream.
func ExampleAggregate_eventTime() {
	f := operators.NewFlow(operators.FlowOptions{})
	src := operators.NewSource[aggReq](f, "requests")
	res, late, err := operators.Aggregate(src.Stream(), operators.AggregateOptions[aggReq, string]{
		Window:          operators.Sliding(10*time.Second, 5*time.Second),
		Key:             func(r aggReq) string { return r.Route },
		Value:           func(r aggReq) float64 { return r.Millis },
		Fns:             []operators.AggFn{operators.AggCount(), operators.AggSum()},
		EventTime:       func(r aggReq) int64 { return int64(r.At) },
		OutOfOrder:      2 * time.Second,
		AllowedLateness: 3 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	res.Subscribe(func(r operators.WindowResult[string]) {
		fmt.Printf("%s [%v,%v) count=%g sum=%g update=%v\n", r.Key, time.Duration(r.Start), time.Duration(r.End), r.Values[0], r.Values[1], r.Update)
	})
	late.Subscribe(func(r aggReq) { fmt.Println("late:", r.Route, r.At) })
	_ = f.Open()

	src.Push([]aggReq{
		{"/a", 1, 1 * time.Second},
		{"/a", 2, 4 * time.Second},
		{"/a", 4, 7 * time.Second},   // watermark 5s: [-5s,5s) fires
		{"/a", 8, 3 * time.Second},   // late, but [-5s,5s) is open until 8s: updated
		{"/a", 16, 16 * time.Second}, // watermark 14s: [0s,10s) fires
		{"/a", 32, 2 * time.Second},  // [0s,10s) closed at 13s: late
	})
	f.Drain() // the open windows are emitted at drain
	// Output:
	// /a [-5s,5s) count=2 sum=3 update=false
	// /a [-5s,5s) count=3 sum=11 update=true
	// /a [0s,10s) count=4 sum=15 update=false
	// late: /a 2s
	// /a [5s,15s) count=1 sum=4 update=false
	// /a [10s,20s) count=1 sum=16 update=false
	// /a [15s,25s) count=1 sum=16 update=false
}

// Window groups events into slices: here every 3 events, or each second
// of the flow's clock, whichever comes first.
func ExampleWindow() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[int](f, "n")
	windows, err := operators.Window(src.Stream(), operators.WindowOptions{Count: 3, Every: time.Second})
	if err != nil {
		panic(err)
	}
	windows.Subscribe(func(w []int) { fmt.Println(time.Duration(clk.Now()), w) })
	_ = f.Open()

	src.Push([]int{1, 2, 3, 4})
	clk.Add(time.Second)
	f.Advance()
	src.Push([]int{5})
	f.Drain()
	// Output:
	// 0s [1 2 3]
	// 1s [4]
	// 1s [5]
}

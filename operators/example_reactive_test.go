package operators_test

import (
	"fmt"
	"time"

	"streamd/operators"
)

// rxQuote is the event of the examples: a symbol's price.
type rxQuote struct {
	Sym   string
	Price float64
}

// rxAt moves the fake clock to ms milliseconds after the epoch and fires the
// timers due by then.
func rxAt(clk *operators.FakeClock, f *operators.Flow, ms int) {
	clk.Set(int64(ms) * int64(time.Millisecond))
	f.Advance()
}

// rxNow prints the fake clock as a duration since the epoch.
func rxNow(clk *operators.FakeClock) time.Duration { return time.Duration(clk.Now()) }

func ExampleStream_Debounce() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[string](f, "typing")
	src.Stream().Debounce(300 * time.Millisecond).
		Subscribe(func(s string) { fmt.Println(rxNow(clk), s) })
	_ = f.Open()

	for i, text := range []string{"s", "st", "str", "stre"} { // typed 100ms apart
		rxAt(clk, f, 100*i)
		src.PushOne(text)
	}
	rxAt(clk, f, 600) // 300ms after the last key
	rxAt(clk, f, 1000)
	src.PushOne("streamd")
	f.Drain() // emits what is still pending
	// Output:
	// 600ms stre
	// 1s streamd
}

func ExampleDebounceBy() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[rxQuote](f, "quotes")
	operators.DebounceBy(src.Stream(), time.Second, func(q rxQuote) string { return q.Sym }).
		Subscribe(func(q rxQuote) { fmt.Println(rxNow(clk), q.Sym, q.Price) })
	_ = f.Open()

	src.Push([]rxQuote{{"AAPL", 1}, {"MSFT", 2}})
	rxAt(clk, f, 500)
	src.PushOne(rxQuote{"AAPL", 1.5}) // AAPL starts its silence again, MSFT does not
	rxAt(clk, f, 1000)
	rxAt(clk, f, 1500)
	// Output:
	// 1s MSFT 2
	// 1.5s AAPL 1.5
}

func ExampleStream_Throttle() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[int](f, "clicks")
	src.Stream().Throttle(time.Second).Subscribe(func(n int) { fmt.Println(rxNow(clk), n) })
	_ = f.Open()

	for i := range 6 { // a click every 400ms
		rxAt(clk, f, 400*i)
		src.PushOne(i)
	}
	// Output:
	// 0s 0
	// 1.2s 3
}

func ExampleStream_ThrottleTrailing() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[int](f, "clicks")
	src.Stream().ThrottleTrailing(time.Second).Subscribe(func(n int) { fmt.Println(rxNow(clk), n) })
	_ = f.Open()

	for ms := 0; ms <= 3000; ms += 100 { // the flow's timers fire every 100ms
		rxAt(clk, f, ms)
		if ms%400 == 0 && ms < 2400 { // a click every 400ms
			src.PushOne(ms / 400)
		}
	}
	// Output:
	// 0s 0
	// 1s 2
	// 2s 4
	// 3s 5
}

func ExampleBuffer() {
	f := operators.NewFlow(operators.FlowOptions{})
	src := operators.NewSource[int](f, "ids")
	operators.Buffer(src.Stream(), 3).Subscribe(func(ids []int) { fmt.Println(ids) })
	_ = f.Open()

	src.Push([]int{1, 2, 3, 4})
	src.Push([]int{5, 6, 7})
	f.Drain() // emits the partial group
	// Output:
	// [1 2 3]
	// [4 5 6]
	// [7]
}

func ExampleBufferTime() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[string](f, "logs")
	// each second's lines, and at most 3 a group
	operators.BufferTime(src.Stream(), time.Second, 3).
		Subscribe(func(lines []string) { fmt.Println(rxNow(clk), lines) })
	_ = f.Open()

	src.Push([]string{"a", "b"})
	rxAt(clk, f, 500)
	src.Push([]string{"c", "d"}) // the group is full at c
	rxAt(clk, f, 1000)
	rxAt(clk, f, 2000) // nothing arrived in [1s, 2s): nothing emitted
	rxAt(clk, f, 2100)
	src.PushOne("e")
	rxAt(clk, f, 3000)
	// Output:
	// 500ms [a b c]
	// 1s [d]
	// 3s [e]
}

func ExampleStream_Dedup() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[string](f, "alerts")
	src.Stream().Dedup(func(s string) string { return s }, time.Minute).
		Subscribe(func(s string) { fmt.Println(rxNow(clk), s) })
	_ = f.Open()

	src.Push([]string{"disk full", "cpu hot", "disk full"})
	rxAt(clk, f, 30_000)
	src.Push([]string{"disk full", "cpu hot"}) // repeats within the minute
	rxAt(clk, f, 60_000)
	src.PushOne("disk full") // the minute since it passed is over
	// Output:
	// 0s disk full
	// 0s cpu hot
	// 1m0s disk full
}

func ExampleNewDedup() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	dd, err := operators.NewDedup("once", func(q rxQuote) string { return q.Sym }, time.Minute, 10_000)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := operators.NewPipeline[rxQuote, rxQuote]("first-quotes")
	p.AddNode("once", dd).Connect("input", "once").Connect("once", "output")
	p.Out.Connect(operators.InletFunc[rxQuote](func(b []rxQuote) { fmt.Println(b) }))
	if err := p.Build(f); err != nil {
		fmt.Println(err)
		return
	}
	_ = f.Open()

	p.Input().Push([]rxQuote{{"AAPL", 1}, {"AAPL", 2}, {"MSFT", 3}})
	st := dd.Stats().Snapshot()
	fmt.Println("in", st.In, "out", st.Out, "dropped", st.Dropped, "keys", dd.Len())

	_, err = operators.NewDedup("bad", func(q rxQuote) string { return q.Sym }, 0, 0)
	fmt.Println(err)
	// Output:
	// [{AAPL 1} {MSFT 3}]
	// in 3 out 2 dropped 1 keys 2
	// operators: dedup "bad": window must be > 0 (got 0s)
}

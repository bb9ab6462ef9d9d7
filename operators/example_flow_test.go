package operators_test

import (
	"fmt"
	"strings"
	"time"

	"streamd/operators"
)

type quote struct {
	Sym   string
	Price float64
	Score float64
}

// The fluent API: typed operators chained on a stream, driven here by a
// fake clock (a real program calls flow.Run(ctx) instead).
func Example_fluent() {
	clk := operators.NewFakeClock(time.Unix(0, 0))
	flow := operators.NewFlow(operators.FlowOptions{Clock: clk})
	src := operators.NewSource[quote](flow, "quotes")

	relevant := src.Stream().
		Filter(func(q quote) bool { return q.Score > 0.7 }).
		Map(func(q quote) quote { q.Sym = strings.ToLower(q.Sym); return q }).
		Debounce(time.Second)
	operators.Buffer(relevant, 2).Subscribe(func(b []quote) { fmt.Println(b) })

	if err := flow.Open(); err != nil {
		fmt.Println(err)
		return
	}
	for _, q := range []quote{{"AAPL", 1, 0.9}, {"MSFT", 2, 0.8}, {"JUNK", 3, 0.1}} {
		src.PushOne(q)
		clk.Add(2 * time.Second) // each settles before the next one
		flow.Advance()
	}
	// Output:
	// [{aapl 1 0.9} {msft 2 0.8}]
}

// The graph API: named nodes, connected by name, checked by Build.
func Example_graph() {
	flow := operators.NewFlow(operators.FlowOptions{})
	p := operators.NewPipeline[quote, string]("alerts")
	p.AddNode("hot", operators.NewFilter("hot", func(q quote) bool { return q.Score > 0.7 })).
		AddNode("label", operators.NewMap("label", func(q quote) string { return q.Sym + " is hot" })).
		Connect("input", "hot").
		Connect("hot", "label").
		Connect("label", "output")
	p.Out.Connect(operators.InletFunc[string](func(b []string) {
		for _, s := range b {
			fmt.Println(s)
		}
	}))
	if err := p.Build(flow); err != nil {
		fmt.Println(err)
		return
	}
	_ = flow.Open()
	p.Input().Push([]quote{{"NVDA", 1, 0.95}, {"IBM", 1, 0.2}})

	// A mistake is caught before anything runs:
	bad := operators.NewPipeline[quote, string]("bad")
	bad.AddNode("hot", operators.NewFilter("hot", func(q quote) bool { return true })).
		Connect("input", "hot").Connect("hot", "output")
	fmt.Println(bad.Validate())
	// Output:
	// NVDA is hot
	// operators: pipeline "bad": edge hot → output: type mismatch: hot carries operators_test.quote, the pipeline's output is string
}

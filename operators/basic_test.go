package operators

import (
	"strings"
	"testing"
	"time"
)

type tick struct {
	Sym   string
	Price float64
	Score float64
}

func TestStreamFilterMapSubscribe(t *testing.T) {
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
	src := NewSource[tick](f, "ticks")
	var got []string
	MapTo(src.Stream().Filter(func(t tick) bool { return t.Score > 0.7 }), func(t tick) string { return t.Sym }).
		Subscribe(func(s string) { got = append(got, s) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]tick{{"A", 1, 0.9}, {"B", 1, 0.1}, {"C", 1, 0.8}})
	src.PushOne(tick{"D", 1, 0.71})
	if strings.Join(got, ",") != "A,C,D" {
		t.Fatalf("got %v", got)
	}
	st := f.Stats()
	if st[1].Kind != "filter" || st[1].In != 4 || st[1].Out != 3 || st[1].Dropped != 1 {
		t.Fatalf("filter stats %+v", st[1])
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st[1].Count == 0 {
		t.Fatalf("no latency published at Close: %+v", st[1])
	}
}

func TestPipelineBuildAndErrors(t *testing.T) {
	f := NewFlow(FlowOptions{})
	p := NewPipeline[tick, string]("p")
	p.AddNode("hot", NewFilter("hot", func(t tick) bool { return t.Score > 0.5 })).
		AddNode("sym", NewMap("sym", func(t tick) string { return t.Sym })).
		Connect("input", "hot").Connect("hot", "sym").Connect("sym", "output")
	var got []string
	p.Out.Connect(InletFunc[string](func(b []string) { got = append(got, b...) }))
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	p.Input().Push([]tick{{Sym: "X", Score: 1}, {Sym: "Y"}})
	if len(got) != 1 || got[0] != "X" {
		t.Fatalf("got %v", got)
	}

	cases := []struct {
		name  string
		build func() error
		want  string
	}{
		{"unknown", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewFilter("a", func(tick) bool { return true })).Connect("input", "a").Connect("a", "b")
			return p.Validate()
		}, `unknown node "b"`},
		{"mismatch", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewMap("a", func(t tick) string { return "" })).Connect("input", "a").Connect("a", "output")
			return p.Validate()
		}, "type mismatch"},
		{"dangling", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewFilter("a", func(tick) bool { return true })).
				AddNode("b", NewFilter("b", func(tick) bool { return true })).
				Connect("input", "a").Connect("a", "output").Connect("b", "output")
			return p.Validate()
		}, `node "b" is dangling`},
		{"cycle", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewFilter("a", func(tick) bool { return true })).
				AddNode("b", NewFilter("b", func(tick) bool { return true })).
				Connect("input", "a").Connect("a", "b").Connect("b", "a").Connect("b", "output")
			return p.Validate()
		}, "cycle through a, b"},
		{"badport", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewFilter("a", func(tick) bool { return true })).Connect("input", "a").Connect("a.late", "output").Connect("a", "output")
			return p.Validate()
		}, `has no output "late"`},
		{"dup", func() error {
			p := NewPipeline[tick, tick]("p")
			p.AddNode("a", NewFilter("a", func(tick) bool { return true })).AddNode("a", NewFilter("a", func(tick) bool { return true }))
			return p.Validate()
		}, `two nodes are called "a"`},
	}
	for _, c := range cases {
		err := c.build()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestTimersOrderAndFakeClock(t *testing.T) {
	clk := NewFakeClock(time.Unix(100, 0))
	f := NewFlow(FlowOptions{Clock: clk})
	var fired []uint64
	rec := timedFunc(func(when int64, arg uint64) { fired = append(fired, arg) })
	f.After(3*time.Second, rec, 3)
	f.After(time.Second, rec, 1)
	f.After(time.Second, rec, 11)
	f.After(2*time.Second, rec, 2)
	clk.Add(2 * time.Second)
	f.Advance()
	if len(fired) != 3 || fired[0] != 1 || fired[1] != 11 || fired[2] != 2 {
		t.Fatalf("fired %v", fired)
	}
	clk.Add(time.Second)
	f.Advance()
	if len(fired) != 4 {
		t.Fatalf("fired %v", fired)
	}
}

type timedFunc func(int64, uint64)

func (f timedFunc) OnTimer(when int64, arg uint64) { f(when, arg) }

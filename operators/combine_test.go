package operators

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMergeFluentAndGraph(t *testing.T) {
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
	a, b := NewSource[int](f, "a"), NewSource[int](f, "b")
	var got []int
	a.Stream().Merge(b.Stream(), b.Stream().Map(func(v int) int { return -v })).
		Subscribe(func(v int) { got = append(got, v) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	a.Push([]int{1, 2})
	b.Push([]int{3})
	a.PushOne(4)
	// b's map was connected to b before the merge was (Go evaluates
	// Merge's arguments first), so it sees b's batch first
	if !slices.Equal(got, []int{1, 2, -3, 3, 4}) {
		t.Fatalf("got %v", got)
	}
	if s := f.Stats()[3]; s.Kind != "merge" || s.In != 5 || s.Out != 5 {
		t.Fatalf("stats %+v", s)
	}

	// graph: two edges into the merge's one input
	f2 := NewFlow(FlowOptions{})
	p := NewPipeline[int, int]("p")
	p.AddNode("odd", NewFilter("odd", func(v int) bool { return v%2 == 1 })).
		AddNode("big", NewFilter("big", func(v int) bool { return v > 2 })).
		AddNode("m", NewMerge[int]("m")).
		Connect("input", "odd").Connect("input", "big").
		Connect("odd", "m").Connect("big", "m").Connect("m", "output")
	var out []int
	p.Out.Connect(rtCollect(&out))
	if err := p.Build(f2); err != nil {
		t.Fatal(err)
	}
	_ = f2.Open()
	p.Input().Push([]int{1, 2, 3, 4})
	if !slices.Equal(out, []int{1, 3, 3, 4}) {
		t.Fatalf("out %v", out)
	}
}

func TestMergeOtherFlowFailsOpen(t *testing.T) {
	f, g := NewFlow(FlowOptions{Name: "f"}), NewFlow(FlowOptions{Name: "g"})
	a, b := NewSource[int](f, "a"), NewSource[int](g, "b")
	a.Stream().Merge(b.Stream()).Subscribe(func(int) {})
	if err := f.Open(); err == nil || !strings.Contains(err.Error(), `belongs to flow "g", not "f"`) {
		t.Fatalf("Open err = %v", err)
	}
	if b.Out.Connected() {
		t.Fatal("a stream of another flow was connected")
	}
}

func TestShareGraph(t *testing.T) {
	f := NewFlow(FlowOptions{})
	var archived []int
	p := NewPipeline[int, int]("p")
	p.AddNode("s", NewShare[int]("s")).
		AddNode("double", NewMap("double", func(v int) int { return 2 * v })).
		AddNode("archive", NewSink("archive", func(b []int) { archived = append(archived, b...) })).
		Connect("input", "s").Connect("s", "double").Connect("s", "archive").Connect("double", "output")
	var out []int
	p.Out.Connect(rtCollect(&out))
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	p.Input().Push([]int{1, 2})
	if !slices.Equal(out, []int{2, 4}) || !slices.Equal(archived, []int{1, 2}) {
		t.Fatalf("out %v archived %v", out, archived)
	}
	if s := p.Node("s").Stats().Snapshot(); s.Kind != "share" || s.In != 2 || s.Out != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCombineLatest(t *testing.T) {
	f := NewFlow(FlowOptions{})
	bids, asks := NewSource[int](f, "bids"), NewSource[string](f, "asks")
	var got []string
	CombineLatestWith(bids.Stream(), asks.Stream(), func(b int, a string) string { return fmt.Sprint(b, a) }).
		Subscribe(func(s string) { got = append(got, s) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	bids.Push([]int{1, 2}) // no ask yet: only the latest bid is kept
	asks.PushOne("a")
	bids.Push([]int{3, 4})
	asks.Push([]string{"b", "c"})
	want := []string{"2a", "3a", "4a", "4b", "4c"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := f.Stats()[2]; s.Kind != "combine_latest" || s.In != 7 || s.Out != 5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCombineLatestAndZipInGraph(t *testing.T) {
	for _, kind := range []string{"combine_latest", "zip"} {
		t.Run(kind, func(t *testing.T) {
			var n Node
			pair := func(a int, b string) string { return fmt.Sprintf("%d%s", a, b) }
			if kind == "zip" {
				z, err := NewZip("j", pair, ZipOptions{})
				if err != nil {
					t.Fatal(err)
				}
				n = z
			} else {
				n = NewCombineLatest("j", pair)
			}
			f := NewFlow(FlowOptions{})
			p := NewPipeline[int, string]("p")
			p.AddNode("num", NewFilter("num", func(v int) bool { return v < 10 })).
				AddNode("sym", NewMap("sym", func(v int) string { return string(rune('a' + v%26)) })).
				AddNode("j", n).
				Connect("input", "num").Connect("input", "sym").
				Connect("num", "j.left").Connect("sym", "j.right").Connect("j", "output")
			var out []string
			p.Out.Connect(rtCollect(&out))
			if err := p.Build(f); err != nil {
				t.Fatal(err)
			}
			_ = f.Open()
			p.Input().Push([]int{1, 2, 30})
			want := map[string]string{
				// left 1,2 first (one batch), then right b,c,e
				"combine_latest": "2b,2c,2e",
				"zip":            "1b,2c",
			}[kind]
			if strings.Join(out, ",") != want {
				t.Fatalf("out %v, want %s", out, want)
			}
		})
	}

	for _, c := range []struct {
		edges [][2]string
		want  string
	}{
		{[][2]string{{"input", "j"}, {"j", "output"}}, `node "j" has no input ""`},
		{[][2]string{{"input", "j.left"}, {"input", "j.right"}, {"j", "output"}}, `type mismatch: input carries int, j takes string`},
	} {
		p := NewPipeline[int, string]("p")
		p.AddNode("j", NewCombineLatest("j", func(int, string) string { return "" }))
		for _, e := range c.edges {
			p.Connect(e[0], e[1])
		}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

func TestZipPairsAndOverflow(t *testing.T) {
	cases := []struct {
		policy ZipOverflow
		want   string
	}{
		// left 1..5 into a queue of 3: drop-newest keeps 1,2,3; drop-oldest 3,4,5
		{ZipDropNewest, "1a,2b,3c"},
		{ZipDropOldest, "3a,4b,5c"},
	}
	for _, c := range cases {
		t.Run(c.policy.String(), func(t *testing.T) {
			f := NewFlow(FlowOptions{})
			l, r := NewSource[int](f, "l"), NewSource[string](f, "r")
			var got []string
			ZipWith(l.Stream(), r.Stream(), func(a int, b string) string { return fmt.Sprint(a, b) },
				ZipOptions{MaxQueue: 3, Overflow: c.policy}).
				Subscribe(func(s string) { got = append(got, s) })
			if err := f.Open(); err != nil {
				t.Fatal(err)
			}
			z := f.Operators()[2].(*Zip[int, string, string])
			l.Push([]int{1, 2, 3, 4, 5})
			if ql, qr := z.Queued(); ql != 3 || qr != 0 {
				t.Fatalf("queued %d %d", ql, qr)
			}
			r.Push([]string{"a", "b"})
			r.Push([]string{"c", "d"}) // d waits on the right
			if strings.Join(got, ",") != c.want {
				t.Fatalf("got %v, want %s", got, c.want)
			}
			if ql, qr := z.Queued(); ql != 0 || qr != 1 {
				t.Fatalf("queued %d %d", ql, qr)
			}
			_ = f.Close()
			if s := z.Stats().Snapshot(); s.In != 9 || s.Out != 3 || s.Dropped != 3 { // 2 overflowed, d at Close
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestZipQueueGrowsAndWraps(t *testing.T) {
	z, err := NewZip("z", func(a, b int) int { return a*1000 + b }, ZipOptions{MaxQueue: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	z.Out.Connect(rtCollect(&got))
	next, want := 0, 0
	for round := range 20 {
		// push a few more lefts than rights each round, so the ring wraps and grows
		ls := make([]int, 5+round%3)
		for i := range ls {
			ls[i] = next
			next++
		}
		z.Left().Push(ls)
		rs := make([]int, 4)
		z.Right().Push(rs)
		for _, g := range got {
			if g/1000 != want {
				t.Fatalf("round %d: pair %d, want left %d", round, g, want)
			}
			want++
		}
		got = got[:0]
	}
	if ql, _ := z.Queued(); ql != next-want {
		t.Fatalf("queued %d, want %d", ql, next-want)
	}
}

func TestZipValidation(t *testing.T) {
	fn := func(int, int) int { return 0 }
	for _, c := range []struct {
		opts ZipOptions
		want string
	}{
		{ZipOptions{MaxQueue: -1}, `operators: zip "z": MaxQueue -1: must be at least 1 (0 means 1024)`},
		{ZipOptions{Overflow: 9}, "unknown Overflow ZipOverflow(9)"},
	} {
		if _, err := NewZip("z", fn, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	f, g := NewFlow(FlowOptions{Name: "f"}), NewFlow(FlowOptions{Name: "g"})
	ZipWith(NewSource[int](f, "a").Stream(), NewSource[int](g, "b").Stream(), fn, ZipOptions{})
	if err := f.Open(); err == nil || !strings.Contains(err.Error(), `zip "zip-2": the right stream belongs to flow "g", the left one to "f"`) {
		t.Fatalf("Open err = %v", err)
	}
}

package operators

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// rtEvent is the event type of the router, transform and combine tests.
type rtEvent struct {
	Key string
	N   int
}

// rtCollect returns an inlet that appends every event it gets to *got.
func rtCollect[T any](got *[]T) InletFunc[T] {
	return func(b []T) { *got = append(*got, b...) }
}

func rtRules() []RouteRule[rtEvent] {
	return []RouteRule[rtEvent]{
		{Name: "high", Match: func(e rtEvent) bool { return e.N >= 90 }},
		{Name: "mid", Match: func(e rtEvent) bool { return e.N >= 50 }},
		{Name: "even", Match: func(e rtEvent) bool { return e.N%2 == 0 }},
	}
}

func rtKeys(es []rtEvent) string {
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.Key
	}
	return strings.Join(ks, ",")
}

func TestRouterModes(t *testing.T) {
	batch := []rtEvent{{"a", 95}, {"b", 60}, {"c", 10}, {"d", 51}, {"e", 92}, {"f", 3}}
	cases := []struct {
		mode                  RouteMode
		high, mid, even, def  string
		out, dropped, inCount uint64
	}{
		// first match: a and e are high only; c is even; f goes nowhere
		{RouteFirst, "a,e", "b,d", "c", "f", 6, 0, 6},
		// all matches: b (60) is mid and even; e (92) high, mid and even
		{RouteAll, "a,e", "a,b,d,e", "b,c,e", "f", 10, 0, 6},
	}
	for _, c := range cases {
		t.Run(c.mode.String(), func(t *testing.T) {
			r, err := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules(), Mode: c.mode})
			if err != nil {
				t.Fatal(err)
			}
			var high, mid, even, def []rtEvent
			for name, got := range map[string]*[]rtEvent{"high": &high, "mid": &mid, "even": &even, "": &def} {
				out, ok := r.Route(name)
				if !ok {
					t.Fatalf("no route %q", name)
				}
				out.Connect(rtCollect(got))
			}
			r.Push(batch)
			for _, g := range []struct{ name, got, want string }{
				{"high", rtKeys(high), c.high}, {"mid", rtKeys(mid), c.mid},
				{"even", rtKeys(even), c.even}, {"default", rtKeys(def), c.def},
			} {
				if g.got != g.want {
					t.Errorf("%s: got %q, want %q", g.name, g.got, g.want)
				}
			}
			s := r.Stats().Snapshot()
			if s.In != c.inCount || s.Out != c.out || s.Dropped != c.dropped {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestRouterUnconnectedRoutesCountDropped(t *testing.T) {
	r, err := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules()})
	if err != nil {
		t.Fatal(err)
	}
	var high []rtEvent
	out, _ := r.Route("high")
	out.Connect(rtCollect(&high))
	r.Push([]rtEvent{{"a", 95}, {"b", 60}, {"c", 1}})
	s := r.Stats().Snapshot()
	if rtKeys(high) != "a" || s.Out != 1 || s.Dropped != 2 {
		t.Fatalf("high %v stats %+v", high, s)
	}
	if got, ok := r.Route(DefaultRoute); !ok || got != &r.Out {
		t.Fatal("Route(DefaultRoute) is not the main output")
	}
	if _, ok := r.Route("nope"); ok {
		t.Fatal("Route(nope) found")
	}
}

func TestRouterValidation(t *testing.T) {
	m := func(rtEvent) bool { return true }
	cases := []struct {
		opts RouterOptions[rtEvent]
		want string
	}{
		{RouterOptions[rtEvent]{}, `operators: router "r": no rules`},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Match: m}}}, "rule 0 has no Name"},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Name: "a.b", Match: m}}}, `bad name "a.b"`},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Name: "default", Match: m}}}, `name "default" is reserved`},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Name: "a"}}}, `rule 0 ("a") has no Match`},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Name: "a", Match: m}, {Name: "a", Match: m}}}, `rules 0 and 1 are both called "a"`},
		{RouterOptions[rtEvent]{Rules: []RouteRule[rtEvent]{{Name: "a", Match: m}}, Mode: 7}, "unknown Mode RouteMode(7)"},
	}
	for _, c := range cases {
		_, err := NewRouter("r", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

func TestRouterGraph(t *testing.T) {
	r, err := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules()[:2]})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Outputs(); !slices.Equal(got, []string{"", "high", "mid"}) {
		t.Fatalf("Outputs %q", got)
	}
	var paged []rtEvent
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
	p := NewPipeline[rtEvent, rtEvent]("p")
	p.AddNode("r", r).
		AddNode("page", NewSink("page", func(b []rtEvent) { paged = append(paged, b...) })).
		AddNode("tag", NewMap("tag", func(e rtEvent) rtEvent { e.Key += "!"; return e })).
		Connect("input", "r").Connect("r.high", "page").Connect("r.mid", "tag").
		Connect("tag", "output").Connect("r", "output")
	var out []rtEvent
	p.Out.Connect(rtCollect(&out))
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	p.Input().Push([]rtEvent{{"a", 95}, {"b", 60}, {"c", 1}})
	if rtKeys(paged) != "a" || rtKeys(out) != "b!,c" {
		t.Fatalf("paged %v out %v", paged, out)
	}

	bad := NewPipeline[rtEvent, rtEvent]("p")
	r2, _ := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules()[:1]})
	bad.AddNode("r", r2).Connect("input", "r").Connect("r.low", "output").Connect("r", "output")
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `node "r" has no output "low" (it has the main output, "high")`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRouterFluent(t *testing.T) {
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
	src := NewSource[rtEvent](f, "src")
	rs := Route(src.Stream(), RouterOptions[rtEvent]{Rules: rtRules(), Mode: RouteAll})
	var high, def []string
	rs.Get("high").Subscribe(func(e rtEvent) { high = append(high, e.Key) })
	rs.Default().Subscribe(func(e rtEvent) { def = append(def, e.Key) })
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	src.Push([]rtEvent{{"a", 90}, {"b", 51}, {"c", 1}})
	if strings.Join(high, ",") != "a" || strings.Join(def, ",") != "c" {
		t.Fatalf("high %v default %v", high, def)
	}
	// nothing reads mid and even: a's two copies and b's one are dropped
	if s := rs.Router().Stats().Snapshot(); s.In != 3 || s.Out != 2 || s.Dropped != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRouterFluentMisuseFailsOpen(t *testing.T) {
	f := NewFlow(FlowOptions{})
	src := NewSource[rtEvent](f, "src")
	Route(src.Stream(), RouterOptions[rtEvent]{}) // no rules
	if err := f.Open(); err == nil || !strings.Contains(err.Error(), "no rules") {
		t.Fatalf("Open err = %v", err)
	}
	src.PushOne(rtEvent{"a", 1})
	if s := f.Stats()[1]; s.In != 1 || s.Errors != 1 {
		t.Fatalf("stats %+v", s)
	}

	f2 := NewFlow(FlowOptions{})
	src2 := NewSource[rtEvent](f2, "src")
	rs := Route(src2.Stream(), RouterOptions[rtEvent]{Rules: rtRules()})
	rs.Get("hihg").Subscribe(func(rtEvent) {})
	if err := f2.Open(); err == nil || !strings.Contains(err.Error(), `Get("hihg"): no rule is called "hihg" (rules: "high", "mid", "even")`) {
		t.Fatalf("Open err = %v", err)
	}
}

func TestRouterZeroAllocs(t *testing.T) {
	for _, mode := range []RouteMode{RouteFirst, RouteAll} {
		r, err := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules(), Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		count := InletFunc[rtEvent](func(b []rtEvent) { n += len(b) })
		for _, name := range []string{"", "high", "mid", "even"} {
			out, _ := r.Route(name)
			out.Connect(count)
		}
		batch := make([]rtEvent, 256)
		for i := range batch {
			batch[i] = rtEvent{"k", i % 100}
		}
		if a := testing.AllocsPerRun(100, func() { r.Push(batch) }); a != 0 {
			t.Errorf("%v: %v allocs per batch, want 0", mode, a)
		}
	}
}

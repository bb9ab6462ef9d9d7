package operators

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// aggRewrite rewrites the expected outputs in testdata/aggregate from
// what the aggregator does now: go test ./operators/ -run TestAggregateData -aggregate.rewrite
var aggRewrite = flag.Bool("aggregate.rewrite", false, "rewrite testdata/aggregate/*.txt with the actual output")

// aggEv is the event the datadriven tests aggregate.
type aggEv struct {
	Key string
	T   int64
	V   float64
}

// spreadAcc is a custom accumulator: max − min.
type spreadAcc struct {
	lo, hi float64
	n      int
}

func (a *spreadAcc) Add(v float64) {
	if a.n == 0 || v < a.lo {
		a.lo = v
	}
	if a.n == 0 || v > a.hi {
		a.hi = v
	}
	a.n++
}

func (a *spreadAcc) Merge(o Accumulator) {
	b := o.(*spreadAcc)
	if b.n == 0 {
		return
	}
	a.Add(b.lo)
	a.Add(b.hi)
	a.n += b.n - 2
}

func (a *spreadAcc) Result() float64 { return a.hi - a.lo }
func (a *spreadAcc) Reset()          { *a = spreadAcc{} }

// aggHarness is one `new` of a datadriven file: a flow on a fake clock, an
// aggregator, and what it emitted since the last command.
type aggHarness struct {
	clk   *FakeClock
	f     *Flow
	agg   *Aggregator[aggEv, string]
	event bool
	count bool // count windows: print [start,end]
	got   []string
}

func (h *aggHarness) results(b []WindowResult[string]) {
	for _, r := range b {
		var sb strings.Builder
		if h.count {
			fmt.Fprintf(&sb, "%s [%d,%d] n=%d", r.Key, r.Start, r.End, r.Count)
		} else {
			fmt.Fprintf(&sb, "%s [%d,%d) n=%d", r.Key, r.Start, r.End, r.Count)
		}
		for i, n := range r.Names {
			fmt.Fprintf(&sb, " %s=%s", n, strconv.FormatFloat(r.Values[i], 'g', -1, 64))
		}
		if r.Update {
			sb.WriteString(" update")
		}
		h.got = append(h.got, sb.String())
	}
}

// parseArgs reads "k=v k=v" into a map.
func parseArgs(t *testing.T, fields []string) map[string]string {
	m := make(map[string]string)
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("argument %q is not key=value", f)
		}
		m[k] = v
	}
	return m
}

func (h *aggHarness) run(t *testing.T, cmd string, input []string) []string {
	fields := strings.Fields(cmd)
	h.got = h.got[:0]
	switch fields[0] {
	case "new":
		args := parseArgs(t, fields[1:])
		num := func(k string) time.Duration {
			if args[k] == "" {
				return 0
			}
			n, err := strconv.ParseInt(args[k], 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			return time.Duration(n)
		}
		var opts AggregateOptions[aggEv, string]
		switch args["window"] {
		case "tumbling":
			opts.Window = Tumbling(num("size"))
		case "sliding":
			opts.Window = Sliding(num("size"), num("slide"))
		case "session":
			opts.Window = Session(num("gap"))
		case "count":
			opts.Window = EveryN(int(num("n")))
		default:
			t.Fatalf("unknown window %q", args["window"])
		}
		opts.Key = func(e aggEv) string { return e.Key }
		opts.Value = func(e aggEv) float64 { return e.V }
		if fns := args["fns"]; fns != "" {
			for _, name := range strings.Split(fns, ",") {
				if name == "spread" {
					opts.Fns = append(opts.Fns, AggCustom("spread", func() Accumulator { return new(spreadAcc) }))
					continue
				}
				fn, err := ParseAggFn(name)
				if err != nil {
					t.Fatal(err)
				}
				opts.Fns = append(opts.Fns, fn)
			}
		}
		h.event = args["time"] == "event"
		h.count = opts.Window.Kind == CountWindow
		if h.event {
			opts.EventTime = func(e aggEv) int64 { return e.T }
			opts.OutOfOrder = num("ooo")
			opts.AllowedLateness = num("lateness")
		}
		h.clk = NewFakeClock(time.Unix(0, 0))
		h.f = NewFlow(FlowOptions{Clock: h.clk, StatsInterval: time.Hour})
		agg, err := NewAggregator("agg", opts)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		h.agg = agg
		_ = h.f.Add(agg)
		agg.Out.Connect(InletFunc[WindowResult[string]](h.results))
		agg.Late.Connect(InletFunc[aggEv](func(b []aggEv) {
			for _, e := range b {
				h.got = append(h.got, fmt.Sprintf("late %s t=%d v=%g", e.Key, e.T, e.V))
			}
		}))
		if err := h.f.Open(); err != nil {
			t.Fatal(err)
		}
	case "push":
		// push: one batch; push each: one batch per event.
		var batch []aggEv
		for _, line := range input {
			f := strings.Fields(line)
			var e aggEv
			var vs string
			switch {
			case h.event && len(f) == 3:
				e.Key, vs = f[0], f[2]
				n, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				e.T = n
			case !h.event && len(f) == 2:
				e.Key, vs = f[0], f[1]
			default:
				t.Fatalf("%q: want key value (processing time) or key time value (event time)", line)
			}
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			e.V = v
			batch = append(batch, e)
		}
		if len(fields) > 1 && fields[1] == "each" {
			for _, e := range batch {
				h.agg.Push([]aggEv{e})
			}
		} else {
			h.agg.Push(batch)
		}
	case "advance":
		// advance N: move the fake clock by N ns and fire the flow's timers.
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		h.clk.Add(time.Duration(n))
		h.f.Advance()
	case "flush":
		h.f.Drain()
	case "watermark":
		if wm := h.agg.Watermark(); wm == math.MinInt64 {
			h.got = append(h.got, "none")
		} else {
			h.got = append(h.got, strconv.FormatInt(wm, 10))
		}
	case "stats":
		s := h.agg.Stats().Snapshot()
		h.got = append(h.got, fmt.Sprintf("in=%d out=%d late=%d errors=%d dropped=%d", s.In, s.Out, s.Late, s.Errors, s.Dropped))
	default:
		t.Fatalf("unknown command %q", cmd)
	}
	return slices.Clone(h.got)
}

// TestAggregateData runs the scripts in testdata/aggregate. Each block is
// a command line, input lines, "----", and the expected output up to a
// blank line. Commands: new (window=tumbling|sliding|session|count size=
// slide= gap= n= fns=a,b time=event ooo= lateness=; times in ns), push
// [each], advance N, flush, watermark, stats.
func TestAggregateData(t *testing.T) {
	files, err := filepath.Glob("testdata/aggregate/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runAggregateFile(t, file) })
	}
}

func runAggregateFile(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	h := &aggHarness{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	lineNo := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		lineNo++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmd, at := line, lineNo
		var input, want []string
		for {
			l, ok := next()
			if !ok {
				t.Fatalf("%s:%d: %q has no ----", file, at, cmd)
			}
			if l == "----" {
				break
			}
			input = append(input, l)
		}
		for {
			l, ok := next()
			if !ok || l == "" {
				break
			}
			want = append(want, l)
		}
		got := h.run(t, cmd, input)
		out.WriteString(cmd + "\n")
		for _, l := range input {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		out.WriteString("\n")
		if !*aggRewrite && !slices.Equal(got, want) {
			t.Errorf("%s:%d: %s\ngot:\n  %s\nwant:\n  %s", file, at, cmd, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	if *aggRewrite {
		s := strings.TrimRight(out.String(), "\n") + "\n"
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// aggRefWindow is what the reference model expects of one window.
type aggRefWindow struct {
	n             int64
	sum, min, max float64
}

// TestAggregateReference checks tumbling and sliding windows on event
// time (out of order, with lateness, sizes the slide does not divide)
// against a model that assigns each event to its windows one by one, as
// the definition says: an event goes into each of its windows still open
// (End + lateness > the watermark after the event moved it), and to the
// late output if none is. The last result of each window must be the
// model's, whatever the batching.
func TestAggregateReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		size := int64(1 + rng.IntN(20))
		slide := int64(1 + rng.IntN(int(size)))
		ooo := int64(rng.IntN(10))
		lateness := int64(rng.IntN(10))
		if round%3 == 0 {
			lateness = 0
		}
		if round%5 == 0 {
			slide = size
		}
		n := 1 + rng.IntN(200)
		evs := make([]aggEv, n)
		tmax := int64(0)
		for i := range evs {
			tmax += int64(rng.IntN(4))
			evs[i] = aggEv{Key: string(rune('a' + rng.IntN(3))), T: tmax - int64(rng.IntN(25)) - 5, V: float64(rng.IntN(100))}
		}
		name := fmt.Sprintf("round %d: size=%d slide=%d ooo=%d lateness=%d", round, size, slide, ooo, lateness)

		// the model
		type wkey struct {
			key        string
			start, end int64
		}
		want := map[wkey]*aggRefWindow{}
		wantLate := 0
		wm := int64(math.MinInt64)
		for _, e := range evs {
			wm = max(wm, e.T-ooo)
			in := false
			for s := winFloorDiv(e.T, slide) * slide; s > e.T-size; s -= slide {
				if s+size+lateness <= wm {
					continue
				}
				in = true
				k := wkey{e.Key, s, s + size}
				w := want[k]
				if w == nil {
					w = &aggRefWindow{min: e.V, max: e.V}
					want[k] = w
				}
				w.n++
				w.sum += e.V
				w.min, w.max = min(w.min, e.V), max(w.max, e.V)
			}
			if !in {
				wantLate++
			}
		}

		fns := []AggFn{AggCount(), AggSum(), AggMin(), AggMax()}
		switch round % 4 {
		case 1:
			fns = append(fns, AggCustom("spread", func() Accumulator { return new(spreadAcc) }))
		case 2:
			fns = append(fns, AggPercentile(100))
		}
		f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
		agg, err := NewAggregator("agg", AggregateOptions[aggEv, string]{
			Window:     Sliding(time.Duration(size), time.Duration(slide)),
			Key:        func(e aggEv) string { return e.Key },
			Value:      func(e aggEv) float64 { return e.V },
			Fns:        fns,
			EventTime:  func(e aggEv) int64 { return e.T },
			OutOfOrder: time.Duration(ooo), AllowedLateness: time.Duration(lateness),
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Add(agg)
		got := map[wkey]WindowResult[string]{}
		fired := map[wkey]bool{}
		agg.Out.Connect(InletFunc[WindowResult[string]](func(b []WindowResult[string]) {
			for _, r := range b {
				k := wkey{r.Key, r.Start, r.End}
				if !r.Update {
					if fired[k] {
						t.Errorf("%s: %v fired twice", name, k)
					}
					fired[k] = true
				}
				got[k] = r
			}
		}))
		gotLate := 0
		agg.Late.Connect(InletFunc[aggEv](func(b []aggEv) { gotLate += len(b) }))
		_ = f.Open()
		for rest := evs; len(rest) > 0; {
			m := min(len(rest), 1+rng.IntN(8))
			agg.Push(rest[:m])
			rest = rest[m:]
		}
		f.Drain()

		if gotLate != wantLate {
			t.Errorf("%s: %d late, want %d", name, gotLate, wantLate)
		}
		for k, w := range want {
			r, ok := got[k]
			if !ok {
				t.Errorf("%s: window %v missing, want %+v", name, k, *w)
				continue
			}
			if r.Count != w.n || r.Values[0] != float64(w.n) || r.Values[1] != w.sum || r.Values[2] != w.min || r.Values[3] != w.max {
				t.Errorf("%s: window %v = %v %v, want %+v", name, k, r.Count, r.Values, *w)
			}
			if v, ok := r.Get("spread"); ok && v != w.max-w.min {
				t.Errorf("%s: window %v: spread %v, want %v", name, k, v, w.max-w.min)
			}
			if v, ok := r.Get("p100"); ok && v != w.max {
				t.Errorf("%s: window %v: p100 %v, want %v", name, k, v, w.max)
			}
		}
		for k := range got {
			if want[k] == nil {
				t.Errorf("%s: window %v should not exist", name, k)
			}
		}
		if st := agg.Stats().Snapshot(); st.In != uint64(n) || st.Late != uint64(wantLate) {
			t.Errorf("%s: stats %+v", name, st)
		}
		if t.Failed() {
			return
		}
	}
}

func TestAggregateValidate(t *testing.T) {
	val := func(e aggEv) float64 { return e.V }
	et := func(e aggEv) int64 { return e.T }
	cases := []struct {
		opts AggregateOptions[aggEv, string]
		want string
	}{
		{AggregateOptions[aggEv, string]{}, `operators: aggregate "x": window kind is not set`},
		{AggregateOptions[aggEv, string]{Window: Tumbling(0)}, `operators: aggregate "x": window size must be > 0`},
		{AggregateOptions[aggEv, string]{Window: Sliding(time.Second, 2*time.Second)}, "slide 2s must not exceed the window size 1s"},
		{AggregateOptions[aggEv, string]{Window: Sliding(time.Second, -1)}, "window slide must be > 0"},
		{AggregateOptions[aggEv, string]{Window: Sliding(time.Hour, time.Hour-time.Millisecond)}, "make the slide divide the size"},
		{AggregateOptions[aggEv, string]{Window: Session(0)}, "session gap must be > 0"},
		{AggregateOptions[aggEv, string]{Window: EveryN(0)}, "window count must be > 0"},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), AllowedLateness: 1}, "apply to event time only"},
		{AggregateOptions[aggEv, string]{Window: EveryN(3), EventTime: et, OutOfOrder: 1}, "count windows have no watermark"},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), EventTime: et, AllowedLateness: -1}, "must be ≥ 0"},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Fns: []AggFn{AggAvg()}}, `function "avg" needs Value`},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Value: val, Fns: []AggFn{AggAvg(), AggAvg()}}, `two functions are called "avg"`},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Value: val, Fns: []AggFn{AggPercentile(0)}}, "percentile 0 must be in (0, 100]"},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Value: val, Fns: []AggFn{AggCustom("start", func() Accumulator { return new(spreadAcc) })}}, `function name "start" is taken`},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Value: val, Fns: []AggFn{AggCustom("z", nil)}}, `custom function "z" has no constructor`},
		{AggregateOptions[aggEv, string]{Window: Tumbling(1), Value: val, Fns: []AggFn{{}}}, "Fns[0] is not set"},
	}
	for _, c := range cases {
		_, err := NewAggregator("x", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.opts.Window, err, c.want)
		}
	}
	ok := AggregateOptions[aggEv, string]{Window: Sliding(time.Hour, 7*time.Minute), Value: val, Fns: []AggFn{AggAvg(), AggPercentile(99.9)}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (&AggregateOptions[aggEv, string]{}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "operators: aggregate: ") {
		t.Fatalf("Validate: %v", err)
	}
	for _, name := range []string{"count", "sum", "avg", "mean", "min", "max", "p50", "p99.9", "p100"} {
		if fn, err := ParseAggFn(name); err != nil || fn.Name != name {
			t.Errorf("ParseAggFn(%q) = %+v, %v", name, fn, err)
		}
	}
	for _, name := range []string{"", "p0", "p101", "pxx", "median"} {
		if _, err := ParseAggFn(name); err == nil {
			t.Errorf("ParseAggFn(%q) works", name)
		}
	}
	if _, err := NewWindower[int]("w", WindowOptions{}); err == nil || !strings.Contains(err.Error(), `operators: window "w": set Count`) {
		t.Errorf("NewWindower: %v", err)
	}
}

// TestAggregateGraph builds a pipeline whose aggregate's late output goes
// to a node of its own, through the graph.
func TestAggregateGraph(t *testing.T) {
	agg, err := NewAggregator("agg", AggregateOptions[aggEv, string]{
		Window:    Tumbling(10),
		Key:       func(e aggEv) string { return e.Key },
		Value:     func(e aggEv) float64 { return e.V },
		Fns:       []AggFn{AggAvg()},
		EventTime: func(e aggEv) int64 { return e.T },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := agg.Outputs(); !slices.Equal(got, []string{"", "late"}) {
		t.Fatalf("outputs %q", got)
	}
	var late []aggEv
	p := NewPipeline[aggEv, WindowResult[string]]("p")
	p.AddNode("agg", agg).
		AddNode("late", NewSink("late", func(b []aggEv) { late = append(late, b...) })).
		Connect("input", "agg").Connect("agg", "output").Connect("agg.late", "late")
	var got []WindowResult[string]
	p.Out.Connect(InletFunc[WindowResult[string]](func(b []WindowResult[string]) { got = append(got, b...) }))
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
	if err := p.Build(f); err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	p.Input().Push([]aggEv{{"a", 1, 2}, {"a", 5, 4}, {"b", 12, 1}, {"a", 3, 9}})
	if len(got) != 1 || got[0].Key != "a" || got[0].Value != 3 || got[0].Names[0] != "avg" {
		t.Fatalf("results %+v", got)
	}
	if len(late) != 1 || late[0].T != 3 {
		t.Fatalf("late %+v", late)
	}
	f.Drain()
	if len(got) != 2 || got[1].Key != "b" || got[1].Start != 10 || got[1].End != 20 {
		t.Fatalf("after drain %+v", got)
	}
	for _, s := range f.Stats() {
		if s.Kind == "aggregate" && (s.In != 4 || s.Out != 2 || s.Late != 1) {
			t.Fatalf("stats %+v", s)
		}
	}
}

// TestAggregateStream uses the fluent API on processing time, with the
// flow driven by its fake clock and drained at the end.
func TestAggregateStream(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	f := NewFlow(FlowOptions{Clock: clk})
	src := NewSource[tick](f, "ticks")
	res, late, err := Aggregate(src.Stream(), AggregateOptions[tick, string]{
		Window: Sliding(2*time.Second, time.Second),
		Key:    func(t tick) string { return t.Sym },
		Value:  func(t tick) float64 { return t.Price },
		Fns:    []AggFn{AggMax(), AggSum()},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	res.Subscribe(func(r WindowResult[string]) {
		max, _ := r.Get("max")
		got = append(got, fmt.Sprintf("%s %ds %g %g", r.Key, r.End/int64(time.Second), max, r.Values[1]))
	})
	late.Subscribe(func(tick) { t.Error("late in processing time") })
	if _, _, err := Aggregate(src.Stream(), AggregateOptions[tick, string]{}); err == nil {
		t.Fatal("no error for empty options")
	}
	_ = f.Open()
	src.Push([]tick{{"A", 1, 0}, {"B", 5, 0}})
	clk.Add(time.Second)
	f.Advance()
	src.Push([]tick{{"A", 3, 0}})
	clk.Add(1500 * time.Millisecond)
	f.Advance()
	f.Drain()
	want := []string{"A 1s 1 1", "B 1s 5 5", "A 2s 3 4", "B 2s 5 5", "A 3s 3 3"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	_ = f.Close()
	clk.Add(time.Hour)
	f.Advance() // timers after Close do nothing
}

// TestAggregateKeyChurn sends many keys once each: idle keys are
// forgotten and their states reused, and stale timers of recycled keys
// do not fire their new owners' windows.
func TestAggregateKeyChurn(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	f := NewFlow(FlowOptions{Clock: clk})
	agg, err := NewAggregator("agg", AggregateOptions[int, int]{
		Window: Session(10),
		Key:    func(k int) int { return k },
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Add(agg)
	n := 0
	agg.Out.Connect(InletFunc[WindowResult[int]](func(b []WindowResult[int]) {
		for _, r := range b {
			n++
			if r.Count != 1 || r.End-r.Start != 10 {
				t.Fatalf("result %+v", r)
			}
		}
	}))
	_ = f.Open()
	const keys = 20_000
	for k := range keys {
		agg.Push([]int{k})
		clk.Add(1)
		f.Advance()
	}
	clk.Add(10)
	f.Advance()
	if n != keys {
		t.Fatalf("%d results, want %d", n, keys)
	}
	if len(agg.keys) > 3*aggIdleKeys || len(agg.states) > 3*aggIdleKeys {
		t.Fatalf("%d keys and %d states kept", len(agg.keys), len(agg.states))
	}
}

// TestAggregateNoAllocs checks that a warm tumbling aggregator with a
// known key set allocates nothing per event (results amortise one arena
// per aggArena values).
func TestAggregateNoAllocs(t *testing.T) {
	for _, w := range []WindowSpec{Tumbling(1000), Sliding(1000, 100), Session(5)} {
		clk := NewFakeClock(time.Unix(0, 0))
		f := NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour})
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%d", i)
		}
		agg, err := NewAggregator("agg", AggregateOptions[aggEv, string]{
			Window: w,
			Key:    func(e aggEv) string { return e.Key },
			Value:  func(e aggEv) float64 { return e.V },
			Fns:    []AggFn{AggAvg(), AggMin(), AggMax(), AggSum()},
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Add(agg)
		results := 0
		agg.Out.Connect(InletFunc[WindowResult[string]](func(b []WindowResult[string]) { results += len(b) }))
		_ = f.Open()
		batch := make([]aggEv, 100)
		step := func() {
			for i := range batch {
				batch[i] = aggEv{Key: keys[i], V: float64(i)}
			}
			agg.Push(batch)
			clk.Add(10)
			f.Advance()
		}
		for range 1000 {
			step()
		}
		allocs := testing.AllocsPerRun(1000, step)
		if perEvent := allocs / float64(len(batch)); perEvent > 0.01 {
			t.Errorf("%s: %.3f allocs per event", w, perEvent)
		}
		if results == 0 {
			t.Fatalf("%s: no results", w)
		}
	}
}

func TestWindower(t *testing.T) {
	clk := NewFakeClock(time.Unix(0, 0))
	f := NewFlow(FlowOptions{Clock: clk})
	src := NewSource[int](f, "n")
	var got [][]int
	collect := func(w []int) { got = append(got, w) }

	counted, err := Window(src.Stream(), WindowOptions{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	counted.Subscribe(collect)
	_ = f.Open()
	batch := []int{1, 2, 3, 4, 5, 6, 7}
	src.Push(batch)
	batch[0] = 100 // the windows are copies
	if fmt.Sprint(got) != "[[1 2 3] [4 5 6]]" {
		t.Fatalf("count: %v", got)
	}
	f.Drain()
	if fmt.Sprint(got) != "[[1 2 3] [4 5 6] [7]]" {
		t.Fatalf("count after drain: %v", got)
	}

	got = nil
	f2 := NewFlow(FlowOptions{Clock: clk})
	src2 := NewSource[int](f2, "n")
	timed, err := Window(src2.Stream(), WindowOptions{Every: 10, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	timed.Subscribe(collect)
	_ = f2.Open()
	clk.Set(3)
	src2.Push([]int{1})
	clk.Set(9)
	f2.Advance()
	src2.Push([]int{2, 3}) // count closes [1 2]; 3 opens a window that still ends at 10
	clk.Set(10)
	f2.Advance()
	clk.Set(25)
	f2.Advance()
	src2.Push([]int{4})
	clk.Set(31) // the timer at 30 has not run: the push closes [4] first
	src2.Push([]int{5})
	if fmt.Sprint(got) != "[[1 2] [3] [4]]" {
		t.Fatalf("time: %v", got)
	}
	clk.Set(40)
	f2.Advance()
	if fmt.Sprint(got) != "[[1 2] [3] [4] [5]]" {
		t.Fatalf("time: %v", got)
	}
	st := f2.Stats()[1]
	if st.Kind != "window" || st.In != 5 || st.Out != 4 {
		t.Fatalf("stats %+v", st)
	}
}

package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"streamd/operators"
)

// TestMapAdaptiveConcurrency: `concurrency: {min, max, …}` builds an
// adaptive pool that keeps the input order, shows its bounds and size in
// the node's stats, and samples on the pipeline's flow timers.
func TestMapAdaptiveConcurrency(t *testing.T) {
	h := &fakeHost{}
	p, clk := build(t, `
- name: adaptive
  input: {stream: s}
  nodes:
    - name: sq
      op: map
      set: {sq: "data.n * data.n"}
      concurrency: {min: 2, max: 6, high: 3, low: 1, every: 50ms}
  output: {room: out}
`, h)
	const n = 300
	for i := range n {
		push(p, fmt.Sprintf(`{"n":%d}`, i))
		if i%50 == 0 {
			clk.Add(50 * time.Millisecond)
			p.Flow.Advance()
		}
	}
	p.Flow.Drain()
	got := h.rooms["out"]
	if len(got) != n {
		t.Fatalf("%d results for %d events", len(got), n)
	}
	for i, s := range got {
		if want := fmt.Sprintf(`{"n":%d,"sq":%d}`, i, i*i); s != want {
			t.Fatalf("result %d: %s, want %s (ordered by default)", i, s, want)
		}
	}
	snap := nodeStats(p, "sq")
	g := snap.Gauges
	if snap.Kind != "concurrent_map" || g["workers_min"] != 2 || g["workers_max"] != 6 || g["queue_high"] != 3 || g["queue_low"] != 1 ||
		g["workers"] < 2 || g["workers"] > 6 {
		t.Fatalf("stats %+v", snap)
	}
	cm := p.nodes["sq"].node.(*adapted[Event]).inner.(*operators.ConcurrentMap[Event, Event])
	o := cm.Options()
	if !o.Ordered || o.Concurrency != 2 || o.MaxInFlight != 24 || o.Adaptive.Every != 50*time.Millisecond || o.Adaptive.Quiet != 5 {
		t.Fatalf("options %+v %+v", o, *o.Adaptive)
	}
	if err := p.Flow.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMapConcurrencyErrors: each bad `concurrency` is reported at its
// place in the config, the field inside the range included.
func TestMapConcurrencyErrors(t *testing.T) {
	cases := []struct{ conc, want string }{
		{"{min: 0, max: 4}", `[1:94] pipeline "p": node "a".concurrency.min: min 0: must be at least 1`},
		{"{min: 4, max: 2}", `[1:102] pipeline "p": node "a".concurrency.max: max 2 is below min 4`},
		{"{max: 2000}", `[1:94] pipeline "p": node "a".concurrency.max: max 2000: at most 1024`},
		{"{min: 2}", `[1:88] pipeline "p": node "a".concurrency: a range needs max`},
		{"{max: 4, high: -1}", `[1:103] pipeline "p": node "a".concurrency.high: high -1: must not be negative`},
		{"{max: 4, low: -1}", `[1:102] pipeline "p": node "a".concurrency.low: low -1: must not be negative`},
		{"{max: 4, high: 2, low: 2}", `[1:111] pipeline "p": node "a".concurrency.low: low 2 must be below high 2`},
		{"{max: 4, low: 1}", `[1:102] pipeline "p": node "a".concurrency.low: low 1 must be below high, which is the number of workers when unset`},
		{"{max: 4, every: 10us}", `[1:104] pipeline "p": node "a".concurrency.every: every 10µs: must be at least 1ms`},
		{"{max: 4, foo: 1}", `[1:97] unknown field "foo"`},
		{"-1", `[1:88] pipeline "p": node "a".concurrency: -1 workers: want 1 to 1024`},
		{"2000", `[1:88] pipeline "p": node "a".concurrency: 2000 workers: want 1 to 1024`},
		{"lots", `[1:88] concurrency: want a number of workers (8) or a range ({min: 1, max: 8})`},
		{"[4]", `[1:88] concurrency: want a number of workers`},
		{"{max: 4}, retry: {attempts: 2}", `node "a".retry: retry and concurrency together are not supported`},
	}
	for _, c := range cases {
		checkErr(t, "- {name: p, input: {stream: s}, nodes: [{name: a, op: map, set: {x: '1'}, concurrency: "+c.conc+"}], output: {room: r}}", c.want)
	}
	// a block mapping points at the line of the field
	checkErr(t, `
- name: p
  input: {stream: s}
  nodes:
    - name: a
      op: map
      set: {x: "1"}
      concurrency:
        min: 3
        max: 2
  output: {room: r}
`, `[10:14] pipeline "p": node "a".concurrency.max: max 2 is below min 3`)
	// a cache cannot wrap a concurrent map, adaptive or not
	checkErr(t, `- {name: p, input: {stream: s}, nodes: [{name: c, op: cache, key: data.k, do: {op: map, set: {x: "1"}, concurrency: {max: 2}}}], output: {room: r}}`,
		"a map with concurrency or retry emits later")
}

// TestMapConcurrencyReload: a reload keeps a concurrent map whose
// `concurrency` is unchanged (its position in the file aside) and
// rebuilds one whose range changed.
func TestMapConcurrencyReload(t *testing.T) {
	const v1 = `
- name: p
  input: {stream: s}
  nodes:
    - {name: a, op: map, set: {x: "1"}, concurrency: {min: 1, max: 4, every: 20ms}}
    - {name: b, op: map, set: {y: "2"}, concurrency: 3}
  output: {room: out}
`
	h := &fakeHost{}
	specs, _ := ParseYAML([]byte(v1))
	f := operators.NewFlow(operators.FlowOptions{Clock: operators.NewFakeClock(time.Unix(0, 0))})
	p1, err := Build(specs[0], f, Options{Host: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	defer f.Close()
	same, _ := ParseYAML([]byte("# moved down a line\n" + v1))
	p2, err := Build(same[0], f, Options{Host: h}, p1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.nodes["a"] != p1.nodes["a"] || p2.nodes["b"] != p1.nodes["b"] {
		t.Fatal("an unchanged concurrent map was rebuilt")
	}
	changed, _ := ParseYAML([]byte(strings.Replace(strings.Replace(v1, "max: 4", "max: 5", 1), "concurrency: 3", "concurrency: 2", 1)))
	p3, err := Build(changed[0], f, Options{Host: h}, p2)
	if err != nil {
		t.Fatal(err)
	}
	if p3.nodes["a"] == p2.nodes["a"] || p3.nodes["b"] == p2.nodes["b"] {
		t.Fatal("a concurrent map whose concurrency changed was kept")
	}
	push(p3, `{"n":1}`)
	p3.Flow.Drain()
	if got := strings.Join(h.rooms["out"], " "); got != `{"n":1,"x":1,"y":2}` {
		t.Fatalf("after reloads: %s", got)
	}
}

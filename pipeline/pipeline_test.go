package pipeline

import (
	"strings"
	"testing"
	"time"

	"streamd/operators"
)

type fakeHost struct {
	rooms   map[string][]string
	replies []string
}

func (h *fakeHost) Publish(room string, data []byte) error {
	if h.rooms == nil {
		h.rooms = map[string][]string{}
	}
	h.rooms[room] = append(h.rooms[room], string(data))
	return nil
}

func (h *fakeHost) Reply(ev *Event, data []byte) { h.replies = append(h.replies, string(data)) }

func build(t *testing.T, src string, h Host) (*Pipeline, *operators.FakeClock) {
	t.Helper()
	specs, err := ParseYAML([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	clk := operators.NewFakeClock(time.Unix(1000, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	p, err := Build(specs[0], f, Options{Host: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	return p, clk
}

func push(p *Pipeline, data ...string) {
	for _, d := range data {
		ev := NewEvent(p.Stream(), []byte(d), p.Flow.Now())
		ev.Origin = "client"
		p.Input().PushOne(ev)
	}
}

func TestFilterMapToRoom(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: scoring
  input: {stream: market}
  nodes:
    - {name: relevant, op: filter, if: "data.relevance_score > 0.7"}
    - {name: enrich, op: map, set: {score: "data.price * 2", sym: "data.symbol + '!'"}}
  output: {room: out}
`, h)
	push(p, `{"symbol":"A","price":2,"relevance_score":0.9}`, `{"symbol":"B","price":3,"relevance_score":0.1}`, `{"symbol":"C", "price":1.5,"relevance_score":0.8,"score":7}`)
	got := strings.Join(h.rooms["out"], "\n")
	want := `{"symbol":"A","price":2,"relevance_score":0.9,"score":4,"sym":"A!"}` + "\n" + `{"symbol":"C","price":1.5,"relevance_score":0.8,"score":3,"sym":"C!"}`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestConfigErrorsPointAtTheField(t *testing.T) {
	cases := []struct{ src, want string }{
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "data.x >"}], output: {room: r}}`, `[1:67] pipeline "p": node "a".if: expression "data.x >"`},
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: nope}], output: {room: r}}`, `unknown op "nope"`},
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true", room: x}], output: {room: r}}`, `field "room" does not apply to op filter`},
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "1 + 2"}], output: {room: r}}`, `expected bool`},
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true"}]}`, `has no output`},
		{`- {name: p, nodes: [{name: a, op: filter, if: "true"}], output: {room: r}}`, `input: missing`},
		{`- {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true"}], edges: ["input -> a", "a -> b"], output: {room: r}}`, `unknown node "b"`},
	}
	for _, c := range cases {
		specs, err := ParseYAML([]byte(c.src))
		if err == nil {
			err = Check(specs[0], Options{})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n err = %v\nwant %q", c.src, err, c.want)
		}
	}
}

// TestRebuildKeepsUnchangedNodeState: a reload that changes one node keeps
// the others as they were, open windows included.
func TestRebuildKeepsUnchangedNodeState(t *testing.T) {
	const v1 = `
- name: p
  input: {stream: s}
  nodes:
    - {name: pass, op: filter, if: "data.n > 0"}
    - {name: threes, op: aggregate, window: {count: 3}, fn: [count, sum], field: "data.n"}
  output: {room: out}
`
	h := &fakeHost{}
	specs, _ := ParseYAML([]byte(v1))
	clk := operators.NewFakeClock(time.Unix(0, 0))
	f := operators.NewFlow(operators.FlowOptions{Clock: clk})
	p1, err := Build(specs[0], f, Options{Host: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	push(p1, `{"n":1}`, `{"n":2}`)
	specs2, _ := ParseYAML([]byte(strings.Replace(v1, "data.n > 0", "data.n > 1", 1)))
	p2, err := Build(specs2[0], f, Options{Host: h}, p1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.nodes["threes"] != p1.nodes["threes"] || p2.nodes["pass"] == p1.nodes["pass"] {
		t.Fatal("the unchanged aggregate was not kept, or the changed filter was")
	}
	push(p2, `{"n":1}`, `{"n":4}`) // the new filter drops n=1
	if got := strings.Join(h.rooms["out"], " "); got != `{"key":"","start":0,"end":0,"count":3,"sum":7}` {
		t.Fatalf("after rebuild: %s (want the window opened before it, completed)", got)
	}
}

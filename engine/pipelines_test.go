package engine

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/pipeline"
)

func specs(t testing.TB, src string) []pipeline.Spec {
	t.Helper()
	s, err := pipeline.ParseYAML([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const replyPipeline = `
- name: score
  input: {stream: score}
  nodes:
    - {name: hot, op: filter, if: "data.x > 1"}
    - {name: twice, op: map, set: {y: "data.x * 2"}}
  output: {reply: true}
- name: fan
  input: {stream: score}
  nodes:
    - {name: tag, op: map, set: {tag: "'fan'"}}
  output: {room: out}
`

func TestEventReplyAndRoomOutput(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		e := startEngine(t, func(c *Config) { mutate(c); c.Pipelines = specs(t, replyPipeline) })
		watcher := dial(t, e, false)
		watcher.send(map[string]any{"type": "join", "room": "out"})
		watcher.expect("joined")
		c := dial(t, e, false)
		c.send(map[string]any{"type": "event", "stream": "score", "id": 7, "data": map[string]any{"x": 3, "k": "v"}})
		r := c.expect("result")
		if r["stream"] != "score" || num(r["id"]) != 7 {
			t.Fatalf("result %v", r)
		}
		d := r["data"].(map[string]any)
		if num(d["y"]) != 6 || d["k"] != "v" {
			t.Fatalf("data %v", d)
		}
		m := watcher.expect("message")
		if d := m["data"].(map[string]any); d["tag"] != "fan" || num(d["x"]) != 3 {
			t.Fatalf("room message %v", m)
		}
		// filtered out: no result; then one that passes, in msgpack
		c.send(map[string]any{"type": "event", "stream": "score", "data": map[string]any{"x": 0}})
		b, _ := msgpackMarshal(map[string]any{"type": "event", "stream": "score", "id": "m1", "data": map[string]any{"x": 5}})
		c.sendRaw(websocket.BinaryMessage, b)
		r = c.expect("result")
		if d := r["data"].(map[string]any); num(d["y"]) != 10 || r["id"] != "m1" {
			t.Fatalf("msgpack result %v", r)
		}
		c.send(map[string]any{"type": "event", "stream": "nope", "id": "q", "data": 1})
		if er := c.expect("error"); er["code"] != CodeUnknownStream || er["id"] != "q" {
			t.Fatalf("error %v", er)
		}
		if st := e.Stats(); st.Events != 3 || st.Results != 2 {
			t.Fatalf("stats events %d results %d", st.Events, st.Results)
		}
		ps := e.PipelineStats()
		if len(ps["score"]) == 0 || len(ps["fan"]) == 0 {
			t.Fatalf("pipeline stats %v", ps)
		}
	})
}

func TestIngestAndReloadKeepsUnchangedState(t *testing.T) {
	const v1 = `
- name: p
  input: {stream: s}
  nodes:
    - {name: dd, op: filter, if: "data.n > 0"}
    - {name: tag, op: map, set: {v: "1"}}
  output: {room: r}
`
	const v2 = `
- name: p
  input: {stream: s}
  nodes:
    - {name: dd, op: filter, if: "data.n > 0"}
    - {name: tag, op: map, set: {v: "2"}}
  output: {room: r}
`
	e := startEngine(t, func(c *Config) { c.Pipelines = specs(t, v1) })
	got := make(chan string, 16)
	cancel, err := e.Subscribe("r", func(m *Message) { got <- string(m.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	ctx := context.Background()
	if err := e.Ingest(ctx, "s", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, got); g != `{"n":1,"v":1}` {
		t.Fatalf("got %s", g)
	}
	before := e.PipelineStats()["p"]
	if err := e.ReloadPipelines(specs(t, v2)); err != nil {
		t.Fatal(err)
	}
	if err := e.Ingest(ctx, "s", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, got); g != `{"n":2,"v":2}` {
		t.Fatalf("after reload got %s", g)
	}
	// the unchanged filter kept its counters (it is the same operator)
	var inBefore, inAfter uint64
	for _, s := range before {
		if s.Name == "dd" {
			inBefore = s.In
		}
	}
	for _, s := range e.PipelineStats()["p"] {
		if s.Name == "dd" {
			inAfter = s.In
		}
	}
	if inBefore != 1 || inAfter != 2 {
		t.Fatalf("filter in: %d before, %d after reload", inBefore, inAfter)
	}
	// a bad reload changes nothing
	err = e.ReloadPipelines(specs(t, `[{name: p, input: {stream: s}, nodes: [{name: x, op: filter, if: "("}], output: {room: r}}]`))
	if err == nil || !strings.Contains(err.Error(), "expression") {
		t.Fatalf("bad reload: %v", err)
	}
	if err := e.Ingest(ctx, "s", []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, got); g != `{"n":3,"v":2}` {
		t.Fatalf("after bad reload got %s", g)
	}
	// removing the pipeline: its stream is gone
	if err := e.ReloadPipelines(nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Ingest(ctx, "s", []byte(`{}`)); err == nil {
		t.Fatal("ingest into a removed stream worked")
	}
}

func TestGeneratorInput(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.Pipelines = specs(t, `[{name: g, input: {generator: {kind: counter, rate: 1000, limit: 5}}, nodes: [{name: all, op: filter, if: "true"}], output: {room: gen}}]`)
	})
	// The generator starts with the engine: read the room from its
	// history once all 5 are out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out uint64
		for _, s := range e.PipelineStats()["g"] {
			if s.Name == "all" {
				out = s.Out
			}
		}
		if out == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generator fed %d of 5", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := dial(t, e, false)
	c.send(map[string]any{"type": "join", "room": "gen", "since": 0})
	if j := c.expect("joined"); num(j["seq"]) != 5 {
		t.Fatalf("joined %v: want 5 generated events, no more", j)
	}
	for n := 1; n <= 5; n++ {
		m := c.expect("message")
		if d, _ := m["data"].(map[string]any); num(d["n"]) != uint64(n) {
			t.Fatalf("generated event %d: %v", n, m)
		}
	}
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
		return ""
	}
}

func TestFileAndStdinInputs(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/in.jsonl"
	if err := os.WriteFile(path, []byte("{\"n\":1}\n\nnot json\n{\"n\":2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := stdinReader
	stdinReader = strings.NewReader("{\"s\":1}\n{\"s\":2}\n")
	defer func() { stdinReader = old }()
	e := startEngine(t, func(c *Config) {
		c.Pipelines = specs(t, `
- {name: f, input: {file: "`+path+`"}, nodes: [{name: all, op: filter, if: "true"}], output: {room: files}}
- {name: i, input: {stdin: true}, nodes: [{name: all, op: filter, if: "true"}], output: {room: files}}
`)
	})
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < 4 && time.Now().Before(deadline) {
		for name, nodes := range e.PipelineStats() {
			for _, n := range nodes {
				if n.Name == "all" && n.Out == 2 {
					seen[name] = true
				}
			}
		}
		if seen["f"] && seen["i"] {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("file/stdin inputs fed: %v (want 2 good lines each; the bad line skipped)", seen)
}

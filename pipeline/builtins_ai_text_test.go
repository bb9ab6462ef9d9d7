package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"streamd/operators"
	"streamd/state"
)

func roomOf(h *fakeHost, room string) string { return strings.Join(h.rooms[room], "\n") }

func wantRoom(t *testing.T, h *fakeHost, room string, want ...string) {
	t.Helper()
	if got := roomOf(h, room); got != strings.Join(want, "\n") {
		t.Errorf("room %s:\n%s\nwant\n%s", room, got, strings.Join(want, "\n"))
	}
}

func TestTokenizeOp(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> a", "a -> b", "b -> output", "a.error -> bad", "b.error -> bad"]
  nodes:
    - {name: a, op: tokenize, ids_field: ids}
    - {name: b, op: tokenize, text: "data.prompt ?? data.text", encoding: o200k_base, max_tokens: 2, text_field: prompt, count_field: n}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p, `{"text":"hello world"}`, `{"text":"tiktoken is great!","prompt":"hello world, again"}`, `{"x":1}`, `{"text":3}`, `"hello"`)
	wantRoom(t, h, "out",
		`{"text":"hello world","ids":[15339,1917],"token_count":2,"n":2,"prompt":"hello world","truncated":false}`,
		`{"text":"tiktoken is great!","prompt":"hello world","ids":[83,1609,5963,374,2294,0],"token_count":6,"n":2,"truncated":true}`)
	wantRoom(t, h, "bad",
		`{"error":"text: data.text is missing","node":"a","attempts":1,"data":{"x":1}}`,
		`{"error":"text: data.text is a float64, not a string","node":"a","attempts":1,"data":{"text":3}}`,
		`{"error":"invalid operation: int(string) (1:6)","node":"a","attempts":1,"data":"hello"}`)
	if s := nodeStats(p, "a"); s.In != 5 || s.Out != 2 || s.Errors != 3 || s.Kind != "tokenize" {
		t.Errorf("stats of a: %+v", s)
	}
}

// TestTokenizeTextFieldDefault: max_tokens writes the cut text back into
// the field `text` reads.
func TestTokenizeTextFieldDefault(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  nodes:
    - {name: a, op: tokenize, text: "data.body", max_tokens: 1}
  output: {room: out}
`, h)
	push(p, `{"body":"hello world","n":1}`)
	wantRoom(t, h, "out", `{"body":"hello","n":1,"token_count":1,"truncated":true}`)
}

// checkErr asserts that the first pipeline of src fails Check with an
// error at line:col that contains want.
func checkErr(t *testing.T, src, want string) {
	t.Helper()
	specs, err := ParseYAML([]byte(src))
	if err == nil {
		err = Check(specs[0], Options{})
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s:\n err = %v\nwant %q", src, err, want)
	}
}

func TestAITextConfigErrors(t *testing.T) {
	const pre = `- {name: p, input: {stream: s}, output: {room: r}, nodes: [`
	for _, c := range []struct{ node, want string }{
		{`{name: a, op: tokenize, encoding: p50k}`, `[1:94] pipeline "p": node "a".encoding: unknown encoding "p50k"`},
		{`{name: a, op: tokenize, max_tokens: -1}`, `node "a".max_tokens: max_tokens must be > 0`},
		{`{name: a, op: tokenize, text_field: x}`, `node "a".text_field: text_field applies only with max_tokens`},
		{`{name: a, op: tokenize, text: "data.a + data.b", max_tokens: 5}`, `give text_field`},
		{`{name: a, op: tokenize, count_field: "a b"}`, `node "a".count_field: field name "a b"`},
		{`{name: a, op: tokenize, text: "data."}`, `node "a".text: expression "data."`},
		{`{name: a, op: tokenize, size: 3}`, `field "size" does not apply to op tokenize`},
		{`{name: a, op: chunk}`, `node "a".size: op chunk needs size > 0 (runes per chunk)`},
		{`{name: a, op: chunk, size: 3, overlap: 3}`, `[1:99] pipeline "p": node "a".overlap: overlap 3 must be >= 0 and < size 3`},
		{`{name: a, op: chunk, size: 3, by: words}`, `by "words": want runes or tokens`},
		{`{name: a, op: chunk, size: 3, encoding: o200k_base}`, `encoding applies only with by: tokens`},
		{`{name: a, op: classify}`, `op classify needs rules`},
		{`{name: a, op: classify, model: svm}`, `node "a".model: model "svm": want naive_bayes`},
		{`{name: a, op: classify, rules: [{label: x, regex: "("}]}`, `rules[0]: regex "("`},
		{`{name: a, op: classify, rules: [{label: x}]}`, `a rule needs keywords, a regex or a condition`},
		{`{name: a, op: classify, rules: [{keywords: [x]}]}`, `a rule needs a label`},
		{`{name: a, op: classify, rules: [{label: x, if: "1 + 2"}]}`, `expected bool`},
		{`{name: a, op: classify, rules: [{label: x, keywords: [y], confidence: 2}]}`, `confidence 2`},
		{`{name: a, op: classify, rules: [{label: x, keywords: [y], colour: red}]}`, `unknown field "colour"`},
		{`{name: a, op: classify, rules: [{label: x, keywords: [y]}], train: data.l}`, `train applies only with model`},
		{`{name: a, op: classify, model: naive_bayes, confidence_threshold: 1.5}`, `confidence_threshold 1.5`},
		{`{name: a, op: enrich}`, `op enrich needs timestamp, model, count_field or set`},
		{`{name: a, op: enrich, text: data.x}`, `node "a".text: text applies only with count_field`},
		{`{name: a, op: enrich, model: m, set: {model: "1"}}`, `field "model" is set twice`},
		{`{name: a, op: enrich, set: {x: "data."}}`, `node "a".set: expression "data."`},
		{`{name: a, op: cache, do: {op: sentiment}}`, `node "a".key: op cache needs key`},
		{`{name: a, op: cache, key: data.x}`, `op cache needs do`},
		{`{name: a, op: cache, key: data.x, do: {op: dedup, key: x, duration: 1s}}`, `node "a".do: op "dedup" cannot be cached (ops a cache can wrap: chunk, classify, enrich, filter, flat_map, map, sentiment, tokenize)`},
		{`{name: a, op: cache, key: data.x, do: {op: classify, model: naive_bayes}}`, `a classify with a model keeps learning`},
		{`{name: a, op: cache, key: data.x, do: {op: map, set: {y: "1"}, concurrency: 2}}`, `a map with concurrency or retry emits later`},
		{`{name: a, op: cache, key: data.x, do: {op: tokenize, room: r}}`, `[1:119] pipeline "p": node "a".do: field "room" does not apply to op tokenize`},
		{`{name: a, op: cache, key: data.x, do: {op: chunk, size: 0}}`, `[1:116] pipeline "p": node "a".do.size: op chunk needs size > 0`},
		{`{name: a, op: cache, key: data.x, duration: -1s, do: {op: sentiment}}`, `a negative duration`},
	} {
		checkErr(t, pre+c.node+`]}`, c.want)
	}
}

func TestChunkOp(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> c", "c -> output", "c.error -> bad"]
  nodes:
    - {name: c, op: chunk, size: 5, overlap: 2}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p, `{"id":"d1","text":"abcdefgh"}`, `{"text":"tiny"}`, `{"id":1,"text":""}`, `{"id":2}`, `["not","an","object"]`)
	wantRoom(t, h, "out",
		`{"id":"d1","chunk_index":0,"chunk_count":2,"start":0,"end":5,"text":"abcde"}`,
		`{"id":"d1","chunk_index":1,"chunk_count":2,"start":3,"end":8,"text":"defgh"}`,
		`{"chunk_index":0,"chunk_count":1,"start":0,"end":4,"text":"tiny"}`)
	wantRoom(t, h, "bad",
		`{"error":"text: data.text is missing","node":"c","attempts":1,"data":{"id":2}}`,
		`{"error":"invalid operation: int(string) (1:6)","node":"c","attempts":1,"data":["not","an","object"]}`)
	if s := nodeStats(p, "c"); s.In != 5 || s.Out != 3 || s.Dropped != 1 || s.Errors != 2 {
		t.Errorf("stats: %+v", s)
	}
}

// TestChunkOpTokensOffsets: the byte offsets of token chunks index the
// source text, multi-byte characters included.
func TestChunkOpTokensOffsets(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  nodes:
    - {name: c, op: chunk, by: tokens, encoding: o200k_base, size: 3, overlap: 1, id: "data.n * 10"}
  output: {room: out}
`, h)
	src := "Grüße aus Köln 👋 — streaming text, chunked by tokens."
	b, _ := json.Marshal(map[string]any{"n": 4, "text": src})
	push(p, string(b))
	if len(h.rooms["out"]) < 4 {
		t.Fatalf("chunks: %v", h.rooms["out"])
	}
	prevEnd := 0
	for i, s := range h.rooms["out"] {
		var c struct {
			ID, Index, Count, Start, End, Tokens int
			Text                                 string
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(s), &m)
		c.ID, c.Index, c.Count = int(m["id"].(float64)), int(m["chunk_index"].(float64)), int(m["chunk_count"].(float64))
		c.Start, c.End, c.Tokens, c.Text = int(m["start"].(float64)), int(m["end"].(float64)), int(m["tokens"].(float64)), m["text"].(string)
		if c.ID != 40 || c.Index != i || c.Count != len(h.rooms["out"]) || src[c.Start:c.End] != c.Text || c.Tokens < 1 {
			t.Errorf("chunk %d: %s", i, s)
		}
		if i > 0 && (c.Start >= prevEnd || c.End <= prevEnd) {
			t.Errorf("chunk %d [%d, %d) does not overlap the one before, ending at %d", i, c.Start, c.End, prevEnd)
		}
		prevEnd = c.End
	}
	if prevEnd != len(src) {
		t.Errorf("the chunks end at %d of %d bytes", prevEnd, len(src))
	}
}

func TestSentimentOp(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> m", "m -> output", "m.error -> bad"]
  nodes:
    - {name: m, op: sentiment}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p, `{"text":"Today SUX!","id":1}`, `{"text":"Not bad at all"}`, `{"text":""}`, `{"text":null}`)
	wantRoom(t, h, "out",
		`{"text":"Today SUX!","id":1,"sentiment":{"compound":-0.5461,"pos":0,"neg":0.779,"neu":0.221}}`,
		`{"text":"Not bad at all","sentiment":{"compound":0.431,"pos":0.487,"neg":0,"neu":0.513}}`,
		`{"text":"","sentiment":{"compound":0,"pos":0,"neg":0,"neu":0}}`)
	wantRoom(t, h, "bad", `{"error":"text: data.text is missing","node":"m","attempts":1,"data":{"text":null}}`)
}

func TestClassifyRulesOp(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> k", "k -> output", "k.low -> low", "k.error -> bad"]
  nodes:
    - name: k
      op: classify
      confidence_threshold: 0.5
      rules:
        - {label: refund, keywords: ["money back"], regex: "(?i)refund"}
        - {label: big, if: "data.amount > 100", confidence: 0.9}
        - {label: maybe, keywords: [hmm], confidence: 0.3}
    - {name: low, op: room, room: low}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p,
		`{"text":"I want my money back, refund!"}`,
		`{"text":"I want my money back"}`, // the regex does not match
		`{"text":"x","amount":500}`,
		`{"text":"hmm"}`,
		`{"text":"x","amount":"lots"}`,
		`{"text":"nothing"}`)
	wantRoom(t, h, "out",
		`{"text":"I want my money back, refund!","label":"refund","confidence":1}`,
		`{"text":"x","amount":500,"label":"big","confidence":0.9}`)
	// a rule whose `if` fails does not match (an error in the stats), as
	// a router's route is not taken
	wantRoom(t, h, "low",
		`{"text":"I want my money back","label":null,"confidence":0}`,
		`{"text":"hmm","label":"maybe","confidence":0.3}`,
		`{"text":"x","amount":"lots","label":null,"confidence":0}`,
		`{"text":"nothing","label":null,"confidence":0}`)
	if b := roomOf(h, "bad"); b != "" {
		t.Errorf("bad: %s", b)
	}
	if s := nodeStats(p, "k"); s.In != 6 || s.Out != 6 || s.Errors != 4 {
		t.Errorf("stats: %+v", s)
	}
}

const bayesPipeline = `
- name: p
  input: {stream: s}
  edges: ["input -> k", "k -> output", "k.trained -> trained", "k.low -> low"]
  nodes:
    - {name: k, op: classify, model: naive_bayes, train: "data.tag", confidence_threshold: 0.6}
    - {name: trained, op: room, room: trained}
    - {name: low, op: room, room: low}
  output: {room: out}
`

var bayesTraining = []string{
	`{"text":"refund my invoice please","tag":"billing"}`,
	`{"text":"I was charged twice, refund it","tag":"billing"}`,
	`{"text":"the app crashes on login","tag":"bug"}`,
	`{"text":"error when I upload, the app crashes","tag":"bug"}`,
}

var bayesQueries = []string{`{"text":"please refund the charge"}`, `{"text":"the app shows an error"}`, `{"text":"hello"}`}

// buildStore builds bayesPipeline over st and opens it.
func buildBayes(t *testing.T, st *state.Store, h Host) *Pipeline {
	t.Helper()
	specs, err := ParseYAML([]byte(bayesPipeline))
	if err != nil {
		t.Fatal(err)
	}
	f := operators.NewFlow(operators.FlowOptions{Clock: operators.NewFakeClock(time.Unix(1000, 0))})
	p, err := Build(specs[0], f, Options{Host: h, Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	return p
}

func closePipeline(t *testing.T, p *Pipeline) {
	t.Helper()
	if err := errors.Join(p.Flow.Close(), p.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestClassifyBayesSurvivesRestart: what the model learnt is in the state
// store, and a pipeline built again on the reopened store classifies the
// same way without training again.
func TestClassifyBayesSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := state.Open(state.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{}
	p := buildBayes(t, st, h)
	push(p, bayesQueries[0]) // untrained: label null, low
	push(p, bayesTraining...)
	push(p, bayesQueries...)
	closePipeline(t, p)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.rooms["trained"]); n != 4 {
		t.Errorf("%d events on trained", n)
	}
	before := roomOf(h, "out") + "\n" + roomOf(h, "low")
	wantRoom(t, h, "out",
		`{"text":"please refund the charge","label":"billing","confidence":0.7125}`,
		`{"text":"the app shows an error","label":"bug","confidence":0.9356}`)
	wantRoom(t, h, "low",
		`{"text":"please refund the charge","label":null,"confidence":0}`,
		`{"text":"hello","label":"billing","confidence":0.5}`)

	st, err = state.Open(state.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h2 := &fakeHost{}
	p = buildBayes(t, st, h2)
	push(p, bayesQueries[0]) // the restored model, not an untrained one
	push(p, bayesQueries...)
	defer closePipeline(t, p)
	after := roomOf(h2, "out") + "\n" + roomOf(h2, "low")
	wantBefore := strings.Replace(before, `{"text":"please refund the charge","label":null,"confidence":0}`,
		`{"text":"please refund the charge","label":"billing","confidence":0.7125}`, 1)
	if strings.Count(after, "\n") != 3 || len(h2.rooms["trained"]) != 0 {
		t.Fatalf("after restart:\n%s", after)
	}
	for _, l := range strings.Split(wantBefore, "\n") {
		if !strings.Contains(after, l) {
			t.Errorf("after restart, %s is missing:\n%s", l, after)
		}
	}
	// and it keeps learning from there
	push(p, `{"text":"hello hello","tag":"greeting"}`, `{"text":"hello"}`)
	if got := h2.rooms["low"][len(h2.rooms["low"])-1]; !strings.Contains(got, `"label":"greeting"`) {
		t.Errorf("after more training: %s", got)
	}
}

// TestClassifyBayesInMemory: without a store, the node keeps its model in
// a store of its own; a training label that is no string is an error.
func TestClassifyBayesInMemory(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> k", "k -> output", "k.error -> bad"]
  nodes:
    - {name: k, op: classify, model: naive_bayes, max: 1000}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	defer closePipeline(t, p)
	push(p, `{"text":"good","label":"pos"}`, `{"text":"bad","label":"neg"}`, `{"text":"good good"}`, `{"text":"x","label":7}`, `{"text":"x","label":""}`)
	wantRoom(t, h, "out", `{"text":"good good","label":"pos","confidence":0.8}`)
	wantRoom(t, h, "bad",
		`{"error":"train: data.label is a float64, not a string","node":"k","attempts":1,"data":{"text":"x","label":7}}`,
		`{"error":"ai: a label must be non-empty and hold no NUL byte","node":"k","attempts":1,"data":{"text":"x","label":""}}`)
}

func TestEnrichOp(t *testing.T) {
	h := &fakeHost{}
	p, clk := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> e", "e -> output", "e.error -> bad"]
  nodes:
    - {name: e, op: enrich, timestamp: at, model: m1, count_field: n, set: {double: "data.v * 2"}}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p, `{"text":"hello world","v":2}`)
	clk.Add(1500 * time.Millisecond)
	push(p, `{"text":"hi","v":"x"}`)
	wantRoom(t, h, "out", `{"text":"hello world","v":2,"at":1000000,"model":"m1","n":2,"double":4}`)
	if b := roomOf(h, "bad"); !strings.HasPrefix(b, `{"error":"set double: invalid operation`) {
		t.Errorf("bad: %s", b)
	}
}

func TestCacheOp(t *testing.T) {
	h := &fakeHost{}
	p, clk := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> c", "c -> output", "c.error -> bad"]
  nodes:
    - {name: c, op: cache, key: "data.text", duration: 1m, max: 2, do: {op: tokenize, ids_field: ids}}
    - {name: bad, op: room, room: bad}
  output: {room: out}
`, h)
	push(p, `{"text":"hello world","u":1}`, `{"text":"hello world","u":2}`, `{"u":3}`, `{"u":4}`)
	wantRoom(t, h, "out",
		`{"text":"hello world","u":1,"ids":[15339,1917],"token_count":2}`,
		`{"text":"hello world","u":2,"ids":[15339,1917],"token_count":2}`)
	// a failure is not cached: both missing texts ran the tokenizer
	if n := len(h.rooms["bad"]); n != 2 || !strings.Contains(h.rooms["bad"][0], `"node":"c-do"`) {
		t.Errorf("bad: %v", h.rooms["bad"])
	}
	s := nodeStats(p, "c")
	if s.Counters["cache_hits"] != 1 || s.Counters["cache_misses"] != 3 || s.In != 4 || s.Out != 2 || s.Errors != 2 || s.Kind != "cache" {
		t.Errorf("stats: %+v", s)
	}
	// the inner node is not in the flow: its work shows in the cache's stats
	if nodeStats(p, "c-do").Kind != "" {
		t.Error("the inner node is listed in the flow's stats")
	}
	// TTL: after a minute the entry is gone
	clk.Add(time.Minute)
	push(p, `{"text":"hello world","u":5}`)
	if s := nodeStats(p, "c"); s.Counters["cache_misses"] != 4 {
		t.Errorf("after the TTL: %v", s.Counters)
	}
	// LRU: max 2 entries
	push(p, `{"text":"a"}`, `{"text":"b"}`, `{"text":"hello world"}`)
	if s := nodeStats(p, "c"); s.Counters["cache_misses"] != 7 || s.Counters["cache_hits"] != 1 {
		t.Errorf("after evicting: %v", s.Counters)
	}
}

// TestCacheRepliesToEachSender: a hit's output goes to the new event's
// sender, with its id.
func TestCacheRepliesToEachSender(t *testing.T) {
	h := &originHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  nodes:
    - {name: c, op: cache, key: "data.text", do: {op: chunk, size: 3}}
  output: {reply: true}
`, h)
	for i, who := range []string{"ann", "bob"} {
		ev := NewEvent("s", []byte(`{"id":1,"text":"abcdef"}`), p.Flow.Now())
		ev.Origin, ev.ID = who, []byte(fmt.Sprint(i))
		p.Input().PushOne(ev)
	}
	got := h.replies
	want := `{"id":1,"chunk_index":0,"chunk_count":2,"start":0,"end":3,"text":"abc"}`
	if len(got) != 4 || got[0] != "ann 0 "+want || got[2] != "bob 1 "+want || !strings.HasPrefix(got[3], "bob 1 ") {
		t.Errorf("replies %q", got)
	}
	if s := nodeStats(p, "c"); s.Counters["cache_hits"] != 1 || s.Out != 4 {
		t.Errorf("stats %+v", s)
	}
}

// originHost records replies with their event's sender and id.
type originHost struct{ fakeHost }

func (h *originHost) Reply(ev *Event, data []byte) {
	h.replies = append(h.replies, fmt.Sprintf("%v %s %s", ev.Origin, ev.ID, data))
}

// TestCacheKeepsPortsAndFilters: a cached classifier keeps its low port,
// a cached filter drops again without running.
func TestCacheKeepsPortsAndFilters(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> f", "f -> k", "k -> output", "k.low -> low"]
  nodes:
    - {name: f, op: cache, key: "data.n", do: {op: filter, if: "data.n > 0"}}
    - name: k
      op: cache
      key: "data.text"
      do: {op: classify, confidence_threshold: 0.5, rules: [{label: a, keywords: [x]}, {label: b, keywords: [y], confidence: 0.2}]}
    - {name: low, op: room, room: low}
  output: {room: out}
`, h)
	push(p, `{"n":0,"text":"x"}`, `{"n":1,"text":"x"}`, `{"n":0,"text":"x"}`, `{"n":1,"text":"y"}`, `{"n":1,"text":"y","v":2}`)
	wantRoom(t, h, "out", `{"n":1,"text":"x","label":"a","confidence":1}`)
	wantRoom(t, h, "low", `{"n":1,"text":"y","label":"b","confidence":0.2}`, `{"n":1,"text":"y","v":2,"label":"b","confidence":0.2}`)
	if s := nodeStats(p, "f"); s.Counters["cache_hits"] != 3 || s.Out != 3 {
		t.Errorf("filter cache: %+v", s)
	}
	if s := nodeStats(p, "k"); s.Counters["cache_hits"] != 1 || s.Counters["cache_misses"] != 2 {
		t.Errorf("classify cache: %+v", s)
	}
}

// TestCacheSpecEqualIgnoresPositions: a reload keeps a cache node (and
// what it holds) when only its place in the file changed.
func TestCacheSpecEqualIgnoresPositions(t *testing.T) {
	const src = `
- name: p
  input: {stream: s}
  nodes:
    - {name: c, op: cache, key: "data.text", do: {op: tokenize}}
  output: {room: out}
`
	a, _ := ParseYAML([]byte(src))
	b, _ := ParseYAML([]byte("\n\n" + src))
	c, _ := ParseYAML([]byte(strings.Replace(src, "op: tokenize", "op: tokenize, encoding: o200k_base", 1)))
	if !a[0].Nodes[0].equal(&b[0].Nodes[0]) {
		t.Error("moved cache node: not equal")
	}
	if a[0].Nodes[0].equal(&c[0].Nodes[0]) {
		t.Error("changed inner node: equal")
	}
}

// TestAITextOpsCheck: Check validates every text op without loading
// tokenizers or opening a store.
func TestAITextOpsCheck(t *testing.T) {
	specs, err := ParseYAML([]byte(`
- name: p
  input: {stream: s}
  nodes:
    - {name: t, op: tokenize, encoding: o200k_base, max_tokens: 10}
    - {name: c, op: chunk, by: tokens, size: 100, overlap: 10}
    - {name: k, op: classify, model: naive_bayes}
    - {name: m, op: sentiment}
    - {name: e, op: enrich, count_field: n}
    - {name: x, op: cache, key: data.text, do: {op: sentiment}}
  output: {room: out}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(specs[0], Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestAITextFromGo: the ops built from a Spec written in Go, no YAML.
func TestAITextFromGo(t *testing.T) {
	h := &fakeHost{}
	spec := Spec{
		Name:  "go",
		Input: InputSpec{Stream: "s"},
		Nodes: []NodeSpec{
			{Name: "mood", Op: "sentiment", Text: "data.msg"},
			{Name: "kind", Op: "classify", Text: "data.msg", Rules: []ClassRuleSpec{{Label: "greeting", Keywords: []string{"hello"}}}},
			{Name: "cost", Op: "tokenize", Text: "data.msg", Encoding: "o200k_base"},
		},
		Output: &OutputSpec{Room: "out"},
	}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(spec, f, Options{Host: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Open()
	defer closePipeline(t, p)
	push(p, `{"msg":"hello, great work!"}`)
	wantRoom(t, h, "out", `{"msg":"hello, great work!","sentiment":{"compound":0.6588,"pos":0.687,"neg":0,"neu":0.313},"label":"greeting","confidence":1,"token_count":5}`)
}

func BenchmarkSentimentOp(b *testing.B) { benchTextOp(b, `{name: m, op: sentiment}`) }
func BenchmarkClassifyOp(b *testing.B) {
	benchTextOp(b, `{name: k, op: classify, model: naive_bayes}`, bayesTraining...)
}
func BenchmarkTokenizeOp(b *testing.B) { benchTextOp(b, `{name: t, op: tokenize}`) }

// benchTextOp measures events/s through one op: an event's JSON decode,
// the op, and the new data.
func benchTextOp(b *testing.B, node string, warm ...string) {
	specs, err := ParseYAML([]byte(`- {name: p, input: {stream: s}, nodes: [` + node + `], output: {room: out}}`))
	if err != nil {
		b.Fatal(err)
	}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(specs[0], f, Options{Host: nopHost{}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Open()
	defer func() { _ = f.Close(); _ = p.Close() }()
	for _, w := range warm {
		p.Input().PushOne(NewEvent("s", []byte(w), 0))
	}
	data := []byte(`{"id":42,"user":"ann","text":"hi, the app keeps crashing after the update and I also see a strange charge on my invoice. not great!"}`)
	batch := make([]Event, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		for j := range batch {
			batch[j] = NewEvent("s", data, 0)
		}
		p.Input().Push(batch)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestCacheMapAndFlatMap: a cached map with set replays the fields it
// set onto the new event; with to, and a flat_map, their new data.
func TestCacheMapAndFlatMap(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  edges: ["input -> a", "input -> b", "input -> c", "a -> ra", "b -> rb", "c -> rc"]
  nodes:
    - {name: a, op: cache, key: "data.x", do: {op: map, set: {y: "data.x * 2", x: "data.x + 1"}}}
    - {name: b, op: cache, key: "data.x", do: {op: map, to: "{'double': data.x * 2}"}}
    - {name: c, op: cache, key: "data.x", do: {op: flat_map, each: "[data.x, data.x]"}}
    - {name: ra, op: room, room: a}
    - {name: rb, op: room, room: b}
    - {name: rc, op: room, room: c}
`, h)
	push(p, `{"x":1,"u":"ann"}`, `{"u":"bob","x":1}`)
	wantRoom(t, h, "a", `{"x":2,"u":"ann","y":2}`, `{"u":"bob","x":2,"y":2}`)
	wantRoom(t, h, "b", `{"double":2}`, `{"double":2}`)
	wantRoom(t, h, "c", "1", "1", "1", "1")
	for _, n := range []string{"a", "b", "c"} {
		if s := nodeStats(p, n); s.Counters["cache_hits"] != 1 || s.Counters["cache_misses"] != 1 {
			t.Errorf("%s: %+v", n, s)
		}
	}
}

// TestCacheHitDecodedView: expressions after a cache hit see the new
// event's fields and the replayed ones.
func TestCacheHitDecodedView(t *testing.T) {
	h := &fakeHost{}
	p, _ := build(t, `
- name: p
  input: {stream: s}
  nodes:
    - {name: c, op: cache, key: "data.text", do: {op: sentiment}}
    - {name: m, op: map, set: {who: "data.u + ':' + string(data.sentiment.compound > 0)"}}
  output: {room: out}
`, h)
	push(p, `{"text":"great","u":"ann"}`, `{"text":"great","u":"bob"}`)
	wantRoom(t, h, "out",
		`{"text":"great","u":"ann","sentiment":{"compound":0.6249,"pos":1,"neg":0,"neu":0},"who":"ann:true"}`,
		`{"text":"great","u":"bob","sentiment":{"compound":0.6249,"pos":1,"neg":0,"neu":0},"who":"bob:true"}`)
}

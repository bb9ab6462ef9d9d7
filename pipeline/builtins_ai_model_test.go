package pipeline

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"streamd/aimodel"
	"streamd/operators"
)

// aiHost records outputs (flow goroutine) and says who listens (any
// goroutine).
type aiHost struct {
	fakeHost
	quiet     atomic.Bool // Listening and Connected answer false
	listenAsk atomic.Int64
}

func (h *aiHost) Listening(room string) bool { h.listenAsk.Add(1); return !h.quiet.Load() }
func (h *aiHost) Connected(ev *Event) bool {
	h.listenAsk.Add(1)
	return ev.Origin != nil && !h.quiet.Load()
}

// buildRT builds the first pipeline of src on the system clock.
func buildRT(t *testing.T, src string, h Host) *Pipeline {
	t.Helper()
	specs, err := ParseYAML([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(specs[0], f, Options{Host: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(); _ = p.Close() })
	return p
}

// advanceUntil drives the flow (timers, posted results) until cond holds.
func advanceUntil(t *testing.T, p *Pipeline, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		p.Flow.Advance()
		time.Sleep(time.Millisecond)
	}
}

func nodeStats(p *Pipeline, name string) operators.StatsSnapshot {
	for _, s := range p.Stats() {
		if s.Name == name {
			return s
		}
	}
	return operators.StatsSnapshot{}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return m
}

const embedGraph = `
- name: e
  input: {stream: s}
  edges: ["input -> vec", "vec -> output", "vec.error -> dead"]
  nodes:
    - {name: vec, op: embed, embed: %s}
    - {name: dead, op: room, room: dead}
  output: {room: out}
`

func TestEmbedOpenAIBatchesKeepOrder(t *testing.T) {
	f := newFakeAI(t)
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, batch_size: 4, max_wait: 20ms, concurrency: 3, cache: 0}`), h)
	const n = 23
	for i := range n {
		push(p, fmt.Sprintf(`{"i":%d,"text":"event number %d"}`, i, i))
	}
	advanceUntil(t, p, "every vector", func() bool { return len(h.rooms["out"]) == n })
	emb := aimodel.HashingEmbedder{Dimensions: 8}
	for i, s := range h.rooms["out"] {
		m := decode(t, s)
		if int(m["i"].(float64)) != i {
			t.Fatalf("output %d is event %v: order lost", i, m["i"])
		}
		want := string(aimodel.AppendVector(nil, emb.Embed(fmt.Sprintf("event number %d", i))))
		got, _ := json.Marshal(m["embedding"])
		if string(got) != want {
			t.Fatalf("event %d: embedding %s, want %s", i, got, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, b := range f.batches {
		if len(b) > 4 {
			t.Fatalf("a batch of %d, batch_size is 4", len(b))
		}
		total += len(b)
	}
	if total != n || len(f.batches) < 6 {
		t.Fatalf("%d texts in %d requests", total, len(f.batches))
	}
	st := nodeStats(p, "vec")
	if st.In != n || st.Out != n || st.Errors != 0 || st.Counters["prompt_tokens"] != 3*n {
		t.Fatalf("stats %+v", st)
	}
}

func TestEmbedRetries429And5xxThenSucceeds(t *testing.T) {
	f := newFakeAI(t)
	f.onEmbed = func(w http.ResponseWriter, n int64) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0.05")
			http.Error(w, `{"error":{"message":"slow down"}}`, http.StatusTooManyRequests)
			return true
		case 2:
			http.Error(w, `{"error":{"message":"oops"}}`, http.StatusBadGateway)
			return true
		}
		return false
	}
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, batch_size: 8, retries: 3, backoff: 1ms, concurrency: 1}`), h)
	start := time.Now()
	push(p, `{"text":"a"}`, `{"text":"b"}`)
	p.Flow.Drain()
	if len(h.rooms["out"]) != 2 || len(h.rooms["dead"]) != 0 {
		t.Fatalf("out %v dead %v", h.rooms["out"], h.rooms["dead"])
	}
	if c := f.embedCalls.Load(); c != 3 {
		t.Fatalf("%d attempts, want 3 (429, 502, ok)", c)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("Retry-After 0.05 not honoured: took %v", time.Since(start))
	}
	if st := nodeStats(p, "vec"); st.Counters["retries"] != 2 {
		t.Fatalf("retries counter %v", st.Counters)
	}
}

func TestEmbedFailuresGoToErrorRoute(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hook     func(w http.ResponseWriter, n int64) bool
		spec     string
		reason   string
		attempts int64 // per request
	}{
		{"5xx", func(w http.ResponseWriter, n int64) bool {
			http.Error(w, "down", http.StatusInternalServerError)
			return true
		}, "retries: 2", "http_status", 3},
		{"400", func(w http.ResponseWriter, n int64) bool { http.Error(w, "no", http.StatusBadRequest); return true }, "retries: 2", "http_status", 1},
		{"malformed", func(w http.ResponseWriter, n int64) bool {
			_, _ = w.Write([]byte(`{"data":[{"index":0,"embedding":"x"}]`))
			return true
		}, "retries: 2", "bad_response", 1},
		{"timeout", func(w http.ResponseWriter, n int64) bool { time.Sleep(150 * time.Millisecond); return false }, "retries: 1, timeout: 30ms", "timeout", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAI(t)
			f.onEmbed = tc.hook
			h := &aiHost{}
			p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, batch_size: 10, backoff: 1ms, concurrency: 1, breaker: {failures: 0}, `+tc.spec+`}`), h)
			push(p, `{"text":"a"}`, `{"text":"b"}`, `{"text":"c"}`)
			p.Flow.Drain()
			if len(h.rooms["dead"]) != 3 || len(h.rooms["out"]) != 0 {
				t.Fatalf("out %v dead %v", h.rooms["out"], h.rooms["dead"])
			}
			r := decode(t, h.rooms["dead"][0])
			if r["reason"] != tc.reason || r["node"] != "vec" || int64(r["attempts"].(float64)) != tc.attempts || r["data"].(map[string]any)["text"] != "a" {
				t.Fatalf("error record %v", r)
			}
			if c := f.embedCalls.Load(); c != tc.attempts {
				t.Fatalf("%d attempts at the server, want %d", c, tc.attempts)
			}
			st := nodeStats(p, "vec")
			if st.In != st.Out+st.Errors+st.Dropped || st.Errors != 3 {
				t.Fatalf("in %d != out %d + errors %d + dropped %d", st.In, st.Out, st.Errors, st.Dropped)
			}
		})
	}
}

func TestEmbedCircuitBreaker(t *testing.T) {
	f := newFakeAI(t)
	var healthy atomic.Bool
	f.onEmbed = func(w http.ResponseWriter, n int64) bool {
		if healthy.Load() {
			return false
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, batch_size: 1, retries: 1, backoff: 1ms, concurrency: 1, breaker: {failures: 2, cooldown: 600ms}}`), h)
	push(p, `{"text":"a"}`) // 2 failed attempts: the breaker opens
	p.Flow.Drain()
	push(p, `{"text":"b"}`, `{"text":"c"}`) // refused at once
	p.Flow.Drain()
	if c := f.embedCalls.Load(); c != 2 {
		t.Fatalf("%d attempts, want 2 (then the breaker is open)", c)
	}
	var reasons []string
	for _, s := range h.rooms["dead"] {
		reasons = append(reasons, decode(t, s)["reason"].(string))
	}
	if strings.Join(reasons, " ") != "http_status circuit_open circuit_open" {
		t.Fatalf("reasons %v", reasons)
	}
	healthy.Store(true)
	time.Sleep(650 * time.Millisecond) // cooldown: the next attempt is the probe
	push(p, `{"text":"d"}`, `{"text":"e"}`)
	p.Flow.Drain()
	if len(h.rooms["out"]) != 2 || f.embedCalls.Load() != 4 {
		t.Fatalf("after the cooldown: out %v, %d attempts", h.rooms["out"], f.embedCalls.Load())
	}
	if st := nodeStats(p, "vec"); st.Counters["circuit_open"] != 2 || st.In != st.Out+st.Errors {
		t.Fatalf("stats %+v", st)
	}
}

func TestEmbedCacheRateLimitAndOverflow(t *testing.T) {
	f := newFakeAI(t)
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, batch_size: 1, concurrency: 4, rate: 20}`), h)
	start := time.Now()
	for i := range 5 {
		push(p, fmt.Sprintf(`{"text":"t%d"}`, i))
	}
	p.Flow.Drain()
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Fatalf("5 requests at 20/s took %v", el)
	}
	push(p, `{"text":"t1"}`, `{"text":"t3"}`) // cached
	p.Flow.Drain()
	if f.embedCalls.Load() != 5 || len(h.rooms["out"]) != 7 {
		t.Fatalf("%d requests, %d out", f.embedCalls.Load(), len(h.rooms["out"]))
	}
	if st := nodeStats(p, "vec"); st.Counters["cache_hits"] != 2 || st.Counters["cache_misses"] != 5 {
		t.Fatalf("counters %v", st.Counters)
	}
	if h.rooms["out"][5] != h.rooms["out"][1] {
		t.Fatalf("cached vector differs: %s vs %s", h.rooms["out"][5], h.rooms["out"][1])
	}

	// overflow: error
	slow := newFakeAI(t)
	slow.onEmbed = func(w http.ResponseWriter, n int64) bool { time.Sleep(100 * time.Millisecond); return false }
	h2 := &aiHost{}
	p2 := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+slow.URL()+`", model: m, batch_size: 1, concurrency: 1, max_in_flight: 2, overflow: error}`), h2)
	push(p2, `{"text":"1"}`, `{"text":"2"}`, `{"text":"3"}`, `{"text":"4"}`)
	p2.Flow.Drain()
	if len(h2.rooms["out"]) != 2 || len(h2.rooms["dead"]) != 2 || decode(t, h2.rooms["dead"][0])["reason"] != "overloaded" {
		t.Fatalf("out %v dead %v", h2.rooms["out"], h2.rooms["dead"])
	}
}

func TestEmbedAPIKeyFromEnvIsSentNotLogged(t *testing.T) {
	t.Setenv("STREAMD_TEST_KEY", "sk-secret-123")
	f := newFakeAI(t)
	f.onEmbed = func(w http.ResponseWriter, n int64) bool { http.Error(w, "nope", http.StatusUnauthorized); return true }
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(embedGraph, `{provider: openai, url: "`+f.URL()+`", model: m, api_key_env: STREAMD_TEST_KEY}`), h)
	push(p, `{"text":"a"}`)
	p.Flow.Drain()
	f.mu.Lock()
	auth := f.headers[0].Get("Authorization")
	f.mu.Unlock()
	if auth != "Bearer sk-secret-123" {
		t.Fatalf("Authorization %q", auth)
	}
	if len(h.rooms["dead"]) != 1 || strings.Contains(h.rooms["dead"][0], "sk-secret") {
		t.Fatalf("error record %v", h.rooms["dead"])
	}
}

func TestEmbedHashingIsDeterministic(t *testing.T) {
	h := &aiHost{}
	p, _ := build(t, fmt.Sprintf(embedGraph, `{dimensions: 16, text: "data.title + ' ' + data.body", field: vec}`), h)
	push(p, `{"title":"Hello","body":"world"}`, `{"title":"hello","body":"WORLD"}`, `{"body":1}`)
	out := h.rooms["out"]
	if len(out) != 2 || len(h.rooms["dead"]) != 1 {
		t.Fatalf("out %v dead %v", out, h.rooms["dead"])
	}
	a, b := decode(t, out[0])["vec"], decode(t, out[1])["vec"]
	if fmt.Sprint(a) != fmt.Sprint(b) || len(a.([]any)) != 16 {
		t.Fatalf("case-insensitive embeddings differ: %v %v", a, b)
	}
	if r := decode(t, h.rooms["dead"][0]); r["reason"] != "bad_input" {
		t.Fatalf("record %v", r)
	}
}

func TestEmbedSpecErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{`{provider: openai, model: m}`, "needs url"},
		{`{provider: openai, url: "ftp://x"}`, "needs model"},
		{`{provider: openai, url: "ftp://x", model: m}`, "want http"},
		{`{provider: magic}`, "want hashing or openai"},
		{`{url: "http://x"}`, "takes no url"},
		{`{provider: openai, url: "http://x", model: m, overflow: drop}`, "want block or error"},
	} {
		specs, err := ParseYAML([]byte(fmt.Sprintf(embedGraph, tc.spec)))
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(specs[0], Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}

const llmGraph = `
- name: agent
  input: {stream: ask}
  edges: ["input -> bot", "bot -> output", "bot.error -> dead"]
  nodes:
    - {name: bot, op: llm, llm: %s}
    - {name: dead, op: room, room: dead}
  output: {room: done}
`

// checkStream checks one request's agent_response messages: indexes 0…n
// in order, one final done message, and returns the deltas joined and
// the final message.
func checkStream(t *testing.T, msgs []string) (string, map[string]any) {
	t.Helper()
	var text strings.Builder
	for i, s := range msgs {
		m := decode(t, s)
		if m["type"] != "agent_response" || m["agent_id"] != "bot" || int(m["index"].(float64)) != i {
			t.Fatalf("message %d: %s", i, s)
		}
		done := m["done"].(bool)
		if done != (i == len(msgs)-1) {
			t.Fatalf("message %d of %d has done %v", i, len(msgs), done)
		}
		if done {
			return text.String(), m
		}
		text.WriteString(m["delta"].(string))
	}
	t.Fatalf("no final message in %d", len(msgs))
	return "", nil
}

func TestLLMStreamsDeltasInOrderAcrossAwkwardSplits(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 0} {
		t.Run(fmt.Sprintf("chunk%d", chunk), func(t *testing.T) {
			f := newFakeAI(t)
			f.chunk = chunk
			h := &aiHost{}
			p := buildRT(t, fmt.Sprintf(llmGraph, `{url: "`+f.URL()+`", model: m, prompt: "{{q}} ({{n}})", reply: true, concurrency: 1}`), h)
			q := "héllo wörld 日本語 🎉 " + strings.Repeat("more words ", 30)
			ev := NewEvent("ask", []byte(fmt.Sprintf(`{"q":%q,"n":7}`, q)), p.Flow.Now())
			ev.Origin, ev.ID = "client", []byte(`"r1"`)
			p.Input().PushOne(ev)
			advanceUntil(t, p, "the answer", func() bool { return len(h.rooms["done"]) == 1 })
			text, final := checkStream(t, h.replies)
			want := "You said: " + strings.Join(strings.Fields(q+" (7)"), " ")
			if text != want {
				t.Fatalf("deltas joined:\n%q\nwant\n%q", text, want)
			}
			u := final["usage"].(map[string]any)
			if final["request_id"] != "r1" || final["finish_reason"] != "stop" || u["completion_tokens"].(float64) != float64(len(h.replies)-1) {
				t.Fatalf("final %v", final)
			}
			out := decode(t, h.rooms["done"][0])
			if out["response"] != want || out["q"] != q || out["usage"].(map[string]any)["total_tokens"] != u["total_tokens"] {
				t.Fatalf("main output %v", out)
			}
			st := nodeStats(p, "bot")
			if st.Counters["completion_tokens"] != uint64(len(h.replies)-1) || st.Counters["prompt_tokens"] == 0 || st.Out != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestLLMConcurrentStreamsKeepTheirOrder(t *testing.T) {
	f := newFakeAI(t)
	f.chunk = 5
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(llmGraph, `{url: "`+f.URL()+`", model: m, prompt: "{{q}}", room: "agent.{{user}}", concurrency: 4, request_id: "data.id"}`), h)
	const n = 12
	for i := range n {
		push(p, fmt.Sprintf(`{"id":%d,"user":"u%d","q":"question %d has some words"}`, i, i%3, i))
	}
	advanceUntil(t, p, "every answer", func() bool { return len(h.rooms["done"]) == n })
	for i, s := range h.rooms["done"] { // the main output keeps input order
		if int(decode(t, s)["id"].(float64)) != i {
			t.Fatalf("output %d: %s", i, s)
		}
	}
	for u := range 3 {
		per := map[float64][]string{}
		for _, s := range h.rooms[fmt.Sprintf("agent.u%d", u)] {
			m := decode(t, s)
			id := m["request_id"].(float64)
			if int(id)%3 != u {
				t.Fatalf("request %v streamed to room of u%d", id, u)
			}
			per[id] = append(per[id], s)
		}
		for id, msgs := range per {
			text, _ := checkStream(t, msgs)
			if want := fmt.Sprintf("You said: question %d has some words", int(id)); text != want {
				t.Fatalf("request %v: %q", id, text)
			}
		}
	}
}

func TestLLMFailuresEndTheStreamAndGoToErrorRoute(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(f *fakeAI)
		reason   string
		calls    int64
		partial  bool // deltas were streamed before the failure
		status   float64
		attempts float64
	}{
		{"500", func(f *fakeAI) {
			f.onChat = func(w http.ResponseWriter, n int64) bool {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			}
		}, "http_status", 3, false, 500, 3},
		{"429 then ok", func(f *fakeAI) {
			f.onChat = func(w http.ResponseWriter, n int64) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "0")
					http.Error(w, "later", http.StatusTooManyRequests)
					return true
				}
				return false
			}
		}, "", 2, false, 0, 0},
		{"malformed", func(f *fakeAI) { f.streamEnd = "bad" }, "malformed_sse", 1, true, 0, 1},
		{"disconnect", func(f *fakeAI) { f.streamEnd = "cut" }, "stream_ended", 1, true, 0, 1},
		{"upstream error event", func(f *fakeAI) { f.answer = []string{"a", "b"}; f.streamEnd = "error" }, "upstream_error", 1, true, 0, 1},
		{"idle", func(f *fakeAI) { f.delay = 300 * time.Millisecond; f.chunk = 50 }, "timeout", 1, false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAI(t)
			tc.setup(f)
			h := &aiHost{}
			p := buildRT(t, fmt.Sprintf(llmGraph, `{url: "`+f.URL()+`", model: m, prompt: "{{q}}", reply: true, retries: 2, backoff: 1ms, idle_timeout: 100ms, listen_check: 20ms}`), h)
			ev := NewEvent("ask", []byte(`{"q":"tell me"}`), p.Flow.Now())
			ev.Origin = "client"
			p.Input().PushOne(ev)
			p.Flow.Drain()
			if c := f.chatCalls.Load(); c != tc.calls {
				t.Fatalf("%d calls, want %d", c, tc.calls)
			}
			_, final := checkStream(t, h.replies)
			if tc.reason == "" {
				if len(h.rooms["done"]) != 1 || final["error"] != nil {
					t.Fatalf("done %v final %v", h.rooms["done"], final)
				}
				return
			}
			if final["reason"] != tc.reason || final["error"] == nil || final["usage"] != nil {
				t.Fatalf("final message %v", final)
			}
			if tc.partial != (len(h.replies) > 1) {
				t.Fatalf("%d messages streamed", len(h.replies))
			}
			if len(h.rooms["dead"]) != 1 || len(h.rooms["done"]) != 0 {
				t.Fatalf("dead %v done %v", h.rooms["dead"], h.rooms["done"])
			}
			r := decode(t, h.rooms["dead"][0])
			if r["reason"] != tc.reason || r["attempts"] != tc.attempts || (tc.status != 0 && r["status"] != tc.status) {
				t.Fatalf("error record %v", r)
			}
			st := nodeStats(p, "bot")
			if st.In != st.Out+st.Errors+st.Dropped || st.Errors != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestLLMCancelsWhenNobodyListens(t *testing.T) {
	f := newFakeAI(t)
	f.delay = 20 * time.Millisecond
	f.answer = strings.Fields(strings.Repeat("word ", 200))
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(llmGraph, `{url: "`+f.URL()+`", model: m, prompt: "{{q}}", room: watchers, listen_check: 10ms}`), h)
	push(p, `{"q":"long answer please"}`)
	advanceUntil(t, p, "a few deltas", func() bool { return len(h.rooms["watchers"]) >= 3 })
	h.quiet.Store(true) // the last member left the room
	advanceUntil(t, p, "the upstream request cancelled", func() bool { return f.cancelled.Load() == 1 })
	p.Flow.Drain()
	st := nodeStats(p, "bot")
	if st.Dropped != 1 || st.Errors != 0 || st.Out != 0 || st.Counters["cancelled"] != 1 {
		t.Fatalf("stats %+v", st)
	}
	msgs := h.rooms["watchers"]
	if len(msgs) > 100 {
		t.Fatalf("%d messages: not cancelled early", len(msgs))
	}
	if _, final := checkStream(t, msgs); final["reason"] != "cancelled" {
		t.Fatalf("final %v", final)
	}
	// nobody in the room from the start: no request at all
	calls := f.chatCalls.Load()
	push(p, `{"q":"anyone?"}`)
	p.Flow.Drain()
	if f.chatCalls.Load() != calls || nodeStats(p, "bot").Dropped != 2 {
		t.Fatalf("a request was sent with nobody listening")
	}
}

const qdrantGraph = `
- name: index
  input: {stream: docs}
  edges: ["input -> vec", "vec -> store", "store -> output", "store.error -> dead"]
  nodes:
    - {name: vec, op: embed, embed: {dimensions: 4}}
    - {name: store, op: qdrant, qdrant: %s}
    - {name: dead, op: room, room: dead}
  output: {room: stored}
`

func TestQdrantUpsertsBatchesWithIDsAndPayload(t *testing.T) {
	t.Setenv("QDRANT_API_KEY", "qk")
	f := newFakeAI(t)
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(qdrantGraph, `{url: "`+f.srv.URL+`", collection: "my docs", id: "data.id", batch_size: 3, max_wait: 10ms}`), h)
	ids := []string{`7`, `"550E8400-E29B-41D4-A716-446655440000"`, `"doc-1"`, `-3`, `1.5`}
	for i, id := range ids {
		push(p, fmt.Sprintf(`{"id":%s,"text":"document %d","tags":["x"]}`, id, i))
	}
	advanceUntil(t, p, "every point", func() bool { return len(h.rooms["stored"]) == len(ids) })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.points) != len(ids) || f.putCalls.Load() != 2 {
		t.Fatalf("%d points in %d requests", len(f.points), f.putCalls.Load())
	}
	wantIDs := []any{float64(7), "550e8400-e29b-41d4-a716-446655440000", aimodel.NameUUID([]byte("doc-1")), aimodel.NameUUID([]byte("-3")), aimodel.NameUUID([]byte("1.5"))}
	for i, pt := range f.points {
		if pt["id"] != wantIDs[i] {
			t.Errorf("point %d id %v, want %v", i, pt["id"], wantIDs[i])
		}
		pl := pt["payload"].(map[string]any)
		if _, has := pl["embedding"]; has || pl["text"] != fmt.Sprintf("document %d", i) || len(pt["vector"].([]any)) != 4 {
			t.Errorf("point %d: %v", i, pt)
		}
	}
	if k := f.headers[0].Get("api-key"); k != "qk" {
		t.Fatalf("api-key %q", k)
	}
	for i, s := range h.rooms["stored"] { // acknowledged events leave in order
		if decode(t, s)["text"] != fmt.Sprintf("document %d", i) {
			t.Fatalf("stored %d: %s", i, s)
		}
	}
}

func TestQdrantBadVectorsGoToErrorRoute(t *testing.T) {
	f := newFakeAI(t)
	h := &aiHost{}
	p := buildRT(t, `
- name: index
  input: {stream: docs}
  edges: ["input -> store", "store -> output", "store.error -> dead"]
  nodes:
    - {name: store, op: qdrant, qdrant: {url: "`+f.srv.URL+`", collection: c, field: doc.vec, vector_name: text, payload: "{'t': data.t}"}}
    - {name: dead, op: room, room: dead}
  output: {room: stored}
`, h)
	push(p, `{"t":1,"doc":{"vec":[0.5,0.5]}}`, `{"t":2,"doc":{"vec":"x"}}`, `{"t":3}`, `{"t":4,"doc":{"vec":[]}}`, `{"t":5,"doc":{"vec":[1,2]}}`)
	p.Flow.Drain()
	if len(h.rooms["stored"]) != 2 || len(h.rooms["dead"]) != 3 {
		t.Fatalf("stored %v dead %v", h.rooms["stored"], h.rooms["dead"])
	}
	for _, s := range h.rooms["dead"] {
		if decode(t, s)["reason"] != "bad_input" {
			t.Fatalf("record %s", s)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.points) != 2 || fmt.Sprint(f.points[0]["vector"]) != "map[text:[0.5 0.5]]" || fmt.Sprint(f.points[1]["payload"]) != "map[t:5]" {
		t.Fatalf("points %v", f.points)
	}
}

func TestQdrantRetriesAndFailures(t *testing.T) {
	f := newFakeAI(t)
	var mode atomic.Int32
	f.onPut = func(w http.ResponseWriter, n int64) bool {
		switch mode.Load() {
		case 0:
			if n == 1 {
				http.Error(w, `{"status":{"error":"overloaded"}}`, http.StatusServiceUnavailable)
				return true
			}
		case 1:
			http.Error(w, `{"status":{"error":"Wrong input: Vector dimension error"}}`, http.StatusBadRequest)
			return true
		case 2:
			_, _ = w.Write([]byte(`{"status":"maybe"}`))
			return true
		}
		return false
	}
	h := &aiHost{}
	p := buildRT(t, fmt.Sprintf(qdrantGraph, `{url: "`+f.srv.URL+`", collection: c, batch_size: 2, retries: 2, backoff: 1ms}`), h)
	push(p, `{"text":"a"}`, `{"text":"b"}`)
	p.Flow.Drain()
	if f.putCalls.Load() != 2 || len(h.rooms["stored"]) != 2 {
		t.Fatalf("503 then ok: %d calls, stored %v", f.putCalls.Load(), h.rooms["stored"])
	}
	mode.Store(1)
	push(p, `{"text":"c"}`, `{"text":"d"}`)
	p.Flow.Drain()
	mode.Store(2)
	push(p, `{"text":"e"}`)
	p.Flow.Drain()
	var reasons []string
	for _, s := range h.rooms["dead"] {
		r := decode(t, s)
		reasons = append(reasons, fmt.Sprint(r["reason"], "/", r["attempts"]))
	}
	if strings.Join(reasons, " ") != "http_status/1 http_status/1 bad_response/1" {
		t.Fatalf("reasons %v", reasons)
	}
	st := nodeStats(p, "store")
	if st.In != 5 || st.Out != 2 || st.Errors != 3 || st.Counters["points"] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

const simGraph = `
- name: sim
  input: {stream: s}
  edges: ["input -> vec", "vec -> cmp", "cmp -> output", "cmp.error -> dead"]
  nodes:
    - {name: vec, op: embed, embed: {dimensions: 64}}
    - {name: cmp, op: %s, similarity: %s}
    - {name: dead, op: room, room: dead}
  output: {room: out}
`

func TestSimilarityWindowAndReference(t *testing.T) {
	h := &aiHost{}
	p, clk := build(t, fmt.Sprintf(simGraph, "similarity", `{window: 2, duration: 10s, id: "data.id"}`), h)
	push(p, `{"id":"a","text":"the cat sat on the mat"}`, `{"id":"b","text":"stock prices fell sharply"}`,
		`{"id":"c","text":"the cat sat on the mat today"}`, `{"id":"d","text":"the cat sat on the mat"}`)
	clk.Add(11 * time.Second)
	push(p, `{"id":"e","text":"the cat sat on the mat"}`)
	var got []string
	for _, s := range h.rooms["out"] {
		m := decode(t, s)
		got = append(got, fmt.Sprint(m["id"], "~", m["nearest"]))
		if sim := m["similarity"].(float64); sim < -1 || sim > 1 {
			t.Fatalf("similarity %v", sim)
		}
	}
	// d: a left the window (size 2: b, c), so c is nearest; e: all expired
	if strings.Join(got, " ") != "a~<nil> b~a c~a d~c e~<nil>" {
		t.Fatalf("nearest: %v", got)
	}

	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.json")
	if err := os.WriteFile(ref, []byte(`[{"id":"finance","text":"stock market prices shares"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := &aiHost{}
	p2, _ := build(t, fmt.Sprintf(simGraph, "similarity", `{dimensions: 64, reference: [{id: pets, text: "cat dog pet animals"}], reference_file: "`+ref+`"}`), h2)
	push(p2, `{"text":"my cat and dog"}`, `{"text":"prices of shares fell"}`)
	if a, b := decode(t, h2.rooms["out"][0]), decode(t, h2.rooms["out"][1]); a["nearest"] != "pets" || b["nearest"] != "finance" || a["similarity"].(float64) <= 0 {
		t.Fatalf("reference: %v %v", a, b)
	}
}

func TestSimilarityBadVectors(t *testing.T) {
	h := &aiHost{}
	p, _ := build(t, `
- name: sim
  input: {stream: s}
  edges: ["input -> cmp", "cmp -> output", "cmp.error -> dead"]
  nodes:
    - {name: cmp, op: similarity, similarity: {field: v}}
    - {name: dead, op: room, room: dead}
  output: {room: out}
`, h)
	push(p, `{"v":[1,0]}`, `{"v":[0,1]}`, `{"v":"x"}`, `{"w":[1]}`, `[1,2]`, `{"v":[1,1]}`)
	if len(h.rooms["out"]) != 3 || len(h.rooms["dead"]) != 3 {
		t.Fatalf("out %v dead %v", h.rooms["out"], h.rooms["dead"])
	}
	if m := decode(t, h.rooms["out"][2]); m["similarity"] != 0.7071 {
		t.Fatalf("cos([1,1],[1,0]) = %v", m["similarity"])
	}
}

func TestDedupSemantic(t *testing.T) {
	h := &aiHost{}
	p, _ := build(t, fmt.Sprintf(simGraph, "dedup_semantic", `{threshold: 0.9}`), h)
	push(p, `{"text":"Breaking: the server is down"}`, `{"text":"breaking: THE server is down!"}`, `{"text":"all good now"}`)
	if len(h.rooms["out"]) != 2 || nodeStats(p, "cmp").Dropped != 1 {
		t.Fatalf("out %v", h.rooms["out"])
	}
	h2 := &aiHost{}
	p2, _ := build(t, fmt.Sprintf(simGraph, "dedup_semantic", `{threshold: 0.9, action: tag}`), h2)
	push(p2, `{"text":"a b c"}`, `{"text":"A B C"}`)
	if a, b := decode(t, h2.rooms["out"][0]), decode(t, h2.rooms["out"][1]); a["duplicate"] != false || b["duplicate"] != true || b["similarity"] != 1.0 || b["nearest"] != 1.0 {
		t.Fatalf("tagged: %v %v", a, b)
	}
}

// TestAINodesLeakNoGoroutines builds and closes pipelines with every
// service op, with requests in flight, and checks every goroutine ended.
func TestAINodesLeakNoGoroutines(t *testing.T) {
	f := newFakeAI(t)
	f.delay = 5 * time.Millisecond
	before := runtime.NumGoroutine()
	for range 3 {
		h := &aiHost{}
		parse := func(model string) []Spec {
			specs, err := ParseYAML([]byte(`
- name: all
  input: {stream: s}
  edges: ["input -> vec", "vec -> store", "input -> bot", "store -> output", "bot -> output"]
  nodes:
    - {name: vec, op: embed, embed: {provider: openai, url: "` + f.URL() + `", model: ` + model + `}}
    - {name: store, op: qdrant, qdrant: {url: "` + f.srv.URL + `", collection: c}}
    - {name: bot, op: llm, llm: {url: "` + f.URL() + `", model: ` + model + `, prompt: "{{text}}", room: r}}
  output: {room: out}
`))
			if err != nil {
				t.Fatal(err)
			}
			return specs
		}
		specs := parse("m")
		fl := operators.NewFlow(operators.FlowOptions{})
		p, err := Build(specs[0], fl, Options{Host: h}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.Open(); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			push(p, fmt.Sprintf(`{"text":"hello %d"}`, i))
		}
		time.Sleep(20 * time.Millisecond)
		// a reload that changes the embed and llm nodes: the old ones close
		p2, err := Build(parse("m2")[0], fl, Options{Host: h}, p)
		if err != nil {
			t.Fatal(err)
		}
		if p2.nodes["store"] != p.nodes["store"] || p2.nodes["vec"] == p.nodes["vec"] {
			t.Fatal("reload kept the wrong nodes")
		}
		for i := range 20 {
			push(p2, fmt.Sprintf(`{"text":"again %d"}`, i))
		}
		time.Sleep(20 * time.Millisecond)
		_ = fl.Close()
		_ = p2.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ExampleBuild_embed builds an embed → similarity pipeline in Go.
func ExampleBuild_embed() {
	spec := Spec{
		Name:  "go_ai",
		Input: InputSpec{Stream: "s"},
		Nodes: []NodeSpec{
			{Name: "vec", Op: "embed", Embed: &EmbedSpec{Dimensions: 32}},
			{Name: "near", Op: "similarity", Similarity: &SimilaritySpec{Window: 100}},
		},
		Output: &OutputSpec{Room: "out"},
	}
	h := &fakeHost{}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(spec, f, Options{Host: h}, nil)
	if err != nil {
		panic(err)
	}
	_ = f.Open()
	for _, text := range []string{"red apples", "green apples"} {
		p.Input().PushOne(NewEvent("s", []byte(`{"text":"`+text+`"}`), f.Now()))
	}
	for _, s := range h.rooms["out"] {
		var m map[string]any
		_ = json.Unmarshal([]byte(s), &m)
		fmt.Println(m["text"], m["similarity"], m["nearest"])
	}
	_ = f.Close()
	// Output:
	// red apples 0 <nil>
	// green apples 0.3333 1
}

// TestREADMEAIPipelinesCheck: the pipelines of README's "AI pipelines"
// section compile (they need servers to run: docs/ai.md's examples run).
func TestREADMEAIPipelinesCheck(t *testing.T) {
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i := strings.Index(s, "## AI pipelines")
	if i < 0 {
		t.Fatal("no AI pipelines section")
	}
	s = s[i:]
	s = s[:strings.Index(s[3:], "\n## ")+3]
	n := 0
	for _, block := range strings.Split(s, "```yaml\n")[1:] {
		block = block[:strings.Index(block, "```")]
		var cfg struct {
			Pipelines []Spec `yaml:"pipelines"`
		}
		if err := yamlUnmarshal([]byte(block), &cfg); err != nil {
			t.Fatalf("%v\n%s", err, block)
		}
		for _, spec := range cfg.Pipelines {
			if err := Check(spec, Options{}); err != nil {
				t.Errorf("%s: %v", spec.Name, err)
			}
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d pipelines checked, want 2", n)
	}
}

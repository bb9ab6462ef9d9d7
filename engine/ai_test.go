package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// chatFake streams an OpenAI-compatible chat completion: words deltas
// of the answer "w0 w1 w2 …", each event written in 3-byte pieces
// (flushed), pause between deltas; it reports on cancelled when the
// client went away before the end.
type chatFake struct {
	srv       *httptest.Server
	words     atomic.Int64
	pause     atomic.Int64 // ns
	cancelled chan struct{}
	calls     atomic.Int64
}

func newChatFake(t *testing.T) *chatFake {
	f := &chatFake{cancelled: make(chan struct{}, 16)}
	f.words.Store(20)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct{ Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stream || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "bad", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		send := func(s string) bool {
			for b := []byte(s); len(b) > 0; b = b[min(3, len(b)):] {
				if _, err := w.Write(b[:min(3, len(b))]); err != nil {
					return false
				}
				fl.Flush()
			}
			return true
		}
		n := int(f.words.Load())
		for i := range n {
			select {
			case <-r.Context().Done():
				f.cancelled <- struct{}{}
				return
			case <-time.After(time.Duration(f.pause.Load())):
			}
			d := fmt.Sprintf("w%d", i)
			if i > 0 {
				d = " " + d
			}
			if !send(`data: {"choices":[{"delta":{"content":"` + d + `"}}]}` + "\r\n\r\n") {
				f.cancelled <- struct{}{}
				return
			}
		}
		send(`data: {"choices":[{"delta":{},"finish_reason":"stop"}]}` + "\n\n")
		send(fmt.Sprintf(`data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", n, n+2))
		send("data: [DONE]\n\n")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func answer(n int) string {
	var w []string
	for i := range n {
		w = append(w, fmt.Sprintf("w%d", i))
	}
	return strings.Join(w, " ")
}

// TestLLMStreamsAgentResponsesOverWebSocket: an llm node relays the
// deltas of a streamed chat completion, in order, to the WebSocket client
// that sent the event, and stops the upstream request when that client
// disconnects.
func TestLLMStreamsAgentResponsesOverWebSocket(t *testing.T) {
	f := newChatFake(t)
	e := startEngine(t, func(c *Config) {
		c.Pipelines = specs(t, `
- name: agent
  input: {stream: ask}
  nodes:
    - {name: bot, op: llm, llm: {url: "`+f.srv.URL+`/v1", model: m, prompt: "{{q}}", reply: true, listen_check: 20ms}}
  output: {room: transcripts}
`)
	})
	watcher := dial(t, e, false)
	watcher.send(map[string]any{"type": "join", "room": "transcripts"})
	watcher.expect("joined")
	c := dial(t, e, false)
	c.send(map[string]any{"type": "event", "stream": "ask", "id": "q1", "data": map[string]any{"q": "count"}})
	var text strings.Builder
	for i := 0; ; i++ {
		r := c.expect("result")
		d := r["data"].(map[string]any)
		if r["id"] != "q1" || d["type"] != "agent_response" || d["agent_id"] != "bot" || d["request_id"] != "q1" || int(d["index"].(float64)) != i {
			t.Fatalf("message %d: %v", i, r)
		}
		if d["done"].(bool) {
			if i != 20 || d["usage"].(map[string]any)["completion_tokens"] != 20.0 || d["finish_reason"] != "stop" {
				t.Fatalf("final message %v", d)
			}
			break
		}
		text.WriteString(d["delta"].(string))
	}
	if text.String() != answer(20) {
		t.Fatalf("deltas joined: %q", text.String())
	}
	m := watcher.expect("message")
	if d := m["data"].(map[string]any); d["response"] != answer(20) || d["q"] != "count" {
		t.Fatalf("transcript %v", m)
	}
	// token usage in the Prometheus metrics
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	tokens := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "streamd_pipeline_node_counter_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["pipeline"] == "agent" && l["node"] == "bot" && l["counter"] == "completion_tokens" {
				tokens = mt.GetCounter().GetValue()
			}
		}
	}
	if tokens != 20 {
		t.Fatalf("completion_tokens metric %v, want 20", tokens)
	}

	// a long answer; the client reads a little and leaves
	f.words.Store(10000)
	f.pause.Store(int64(5 * time.Millisecond))
	c2 := dial(t, e, false)
	c2.send(map[string]any{"type": "event", "stream": "ask", "id": 2, "data": map[string]any{"q": "long"}})
	for range 3 {
		c2.expect("result")
	}
	_ = c2.ws.Close()
	select {
	case <-f.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request went on after the client disconnected")
	}
	waitFor(t, "the event counted as dropped", func() bool {
		for _, n := range e.PipelineStats()["agent"] {
			if n.Name == "bot" {
				return n.Dropped == 1 && n.Counters["cancelled"] == 1 && n.Out == 1
			}
		}
		return false
	})
}

// TestLLMStreamsToRoomAndStopsWhenItEmpties: deltas go to a room's
// members; when the last one leaves, the upstream request is cancelled.
func TestLLMStreamsToRoomAndStopsWhenItEmpties(t *testing.T) {
	f := newChatFake(t)
	f.words.Store(10000)
	f.pause.Store(int64(5 * time.Millisecond))
	e := startEngine(t, func(c *Config) {
		c.Pipelines = specs(t, `
- name: agent
  input: {stream: ask}
  nodes:
    - {name: bot, op: llm, llm: {url: "`+f.srv.URL+`/v1", model: m, prompt: "{{q}}", room: "agent.{{room}}", listen_check: 20ms}}
  output: {room: transcripts}
`)
	})
	// nobody in the room: no request at all
	c := dial(t, e, false)
	c.send(map[string]any{"type": "event", "stream": "ask", "data": map[string]any{"q": "hi", "room": "a"}})
	waitFor(t, "the first event dropped", func() bool {
		for _, n := range e.PipelineStats()["agent"] {
			if n.Name == "bot" {
				return n.Dropped == 1
			}
		}
		return false
	})
	if f.calls.Load() != 0 {
		t.Fatal("a request with nobody listening")
	}
	member := dial(t, e, false)
	member.send(map[string]any{"type": "join", "room": "agent.a"})
	member.expect("joined")
	c.send(map[string]any{"type": "event", "stream": "ask", "data": map[string]any{"q": "hi", "room": "a"}})
	for i := range 5 {
		m := member.expect("message")
		if d := m["data"].(map[string]any); int(d["index"].(float64)) != i || d["done"] != false {
			t.Fatalf("message %d: %v", i, m)
		}
	}
	member.send(map[string]any{"type": "leave", "room": "agent.a"})
	select {
	case <-f.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request went on with the room empty")
	}
}

// TestDocumentsInputFeedsPipeline: a documents input reads the files of
// a directory, then the new ones, into a pipeline of the engine.
func TestDocumentsInputFeedsPipeline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.md"), []byte("# A\nfirst"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, func(c *Config) {
		c.Pipelines = specs(t, `
- name: inbox
  input: {documents: {dir: "`+dir+`", poll: 10ms, settle: -1s}}
  nodes:
    - {name: vec, op: embed, embed: {dimensions: 4}}
    - {name: slim, op: map, to: "{'name': data.name ?? 'line', 'dims': len(data.embedding)}"}
  output: {room: docs}
`)
	})
	got := make(chan string, 16)
	stop, err := e.Subscribe("docs", func(m *Message) { got <- string(m.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// a.md may have been read before Subscribe: write the next ones now,
	// each whole at once (written beside and renamed in: with settle off,
	// a poll could otherwise see a file half written, then again whole).
	stage := t.TempDir()
	for _, f := range []struct{ name, text string }{{"b.txt", "second"}, {"c.jsonl", "{\"text\":\"x\"}\n{\"text\":\"y\"}\n"}} {
		if err := os.WriteFile(filepath.Join(stage, f.name), []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(stage, f.name), filepath.Join(dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	want := `{"dims":4,"name":"b.txt"} {"dims":4,"name":"line"} {"dims":4,"name":"line"}`
	deadline := time.After(10 * time.Second)
	for !strings.HasSuffix(strings.Join(seen, " "), want) {
		select {
		case s := <-got:
			seen = append(seen, s)
		case <-deadline:
			t.Fatalf("got %v", seen)
		}
	}
	select { // nothing is read twice
	case s := <-got:
		t.Fatalf("then %s, after %v", s, seen)
	case <-time.After(100 * time.Millisecond):
	}
	if len(seen) > 4 || (len(seen) == 4 && seen[0] != `{"dims":4,"name":"a.md"}`) {
		t.Fatalf("got %v", seen)
	}
}

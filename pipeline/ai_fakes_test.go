package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"streamd/aimodel"
)

// fakeAI is an OpenAI-compatible server on loopback, as the API documents
// it: POST /v1/embeddings ({"model","input":[…]} → {"data":[{"index",
// "embedding"}],"usage"}) and streamed POST /v1/chat/completions
// (server-sent events of chat.completion.chunk objects, then a usage
// chunk, then data: [DONE]), plus Qdrant's PUT
// /collections/{name}/points. Embeddings are the hashing embedder's (8
// dimensions unless the request asks for others); a chat answer is
// "You said: " and the user message, one delta per word. Hooks make it
// misbehave.
type fakeAI struct {
	srv *httptest.Server

	embedCalls atomic.Int64 // attempts at /v1/embeddings
	chatCalls  atomic.Int64
	putCalls   atomic.Int64
	cancelled  atomic.Int64 // chat requests whose context ended before the stream did

	mu      sync.Mutex
	batches [][]string       // embeddings inputs, per successful request
	points  []map[string]any // qdrant points received
	headers []http.Header

	// hooks: return true when they answered
	onEmbed func(w http.ResponseWriter, n int64) bool
	onChat  func(w http.ResponseWriter, n int64) bool
	onPut   func(w http.ResponseWriter, n int64) bool
	// chunk is the write size of streamed answers (flushed after each
	// write); 0: whole events.
	chunk int
	// delay before each chunk of a chat stream.
	delay time.Duration
	// answer overrides the chat answer's deltas.
	answer []string
	// done: streamEnd after the last delta: "done" (usage + [DONE], the
	// default), "cut" (close mid-stream), "bad" (a malformed event)
	streamEnd string
}

func newFakeAI(t testing.TB) *fakeAI {
	f := &fakeAI{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the OpenAI API root.
func (f *fakeAI) URL() string { return f.srv.URL + "/v1" }

func (f *fakeAI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		f.embeddings(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		f.chat(w, r)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/collections/") && strings.HasSuffix(r.URL.Path, "/points"):
		f.put(w, r)
	default:
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
	}
}

func (f *fakeAI) embeddings(w http.ResponseWriter, r *http.Request) {
	n := f.embedCalls.Add(1)
	var req struct {
		Model      string   `json:"model"`
		Input      []string `json:"input"`
		Dimensions int      `json:"dimensions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	if f.onEmbed != nil && f.onEmbed(w, n) {
		return
	}
	dims := req.Dimensions
	if dims == 0 {
		dims = 8
	}
	h := aimodel.HashingEmbedder{Dimensions: dims}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	var out struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	out.Object, out.Model = "list", req.Model
	// answer in reverse order: the index says which is which
	for i := len(req.Input) - 1; i >= 0; i-- {
		out.Data = append(out.Data, item{"embedding", i, h.Embed(req.Input[i])})
		out.Usage.PromptTokens += len(strings.Fields(req.Input[i]))
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	f.mu.Lock()
	f.batches = append(f.batches, req.Input)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeAI) chat(w http.ResponseWriter, r *http.Request) {
	n := f.chatCalls.Add(1)
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Messages []struct {
			Role, Content string
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stream || !req.StreamOptions.IncludeUsage || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"want stream: true and stream_options.include_usage"}}`, http.StatusBadRequest)
		return
	}
	if f.onChat != nil && f.onChat(w, n) {
		return
	}
	prompt := req.Messages[len(req.Messages)-1].Content
	deltas := f.answer
	if deltas == nil {
		words := strings.Fields("You said: " + prompt)
		for i, wd := range words {
			if i > 0 {
				wd = " " + wd
			}
			deltas = append(deltas, wd)
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	write := func(s string) bool {
		b := []byte(s)
		size := f.chunk
		if size <= 0 {
			size = len(b)
		}
		for len(b) > 0 {
			if f.delay > 0 {
				select {
				case <-r.Context().Done():
					f.cancelled.Add(1)
					return false
				case <-time.After(f.delay):
				}
			}
			k := min(size, len(b))
			if _, err := w.Write(b[:k]); err != nil {
				f.cancelled.Add(1)
				return false
			}
			fl.Flush()
			b = b[k:]
		}
		if r.Context().Err() != nil {
			f.cancelled.Add(1)
			return false
		}
		return true
	}
	if !write(": keep-alive\r\n\r\n") {
		return
	}
	id := fmt.Sprintf("chatcmpl-%d", n)
	for i, d := range deltas {
		ch := map[string]any{"id": id, "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": d}, "finish_reason": nil}}}
		b, _ := json.Marshal(ch)
		end := "\n\n"
		if i%2 == 1 {
			end = "\r\n\r\n" // both line ends in one stream
		}
		if !write("data: " + string(b) + end) {
			return
		}
	}
	switch f.streamEnd {
	case "cut":
		return // the handler returns: the chunked body ends without [DONE]
	case "bad":
		write("data: {not json\n\n")
		return
	case "error":
		write(`data: {"error":{"message":"model overloaded","type":"server_error"}}` + "\n\n")
		return
	}
	stop := map[string]any{"id": id, "object": "chat.completion.chunk",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}}
	b, _ := json.Marshal(stop)
	if !write("data: " + string(b) + "\n\n") {
		return
	}
	usage := map[string]any{"id": id, "object": "chat.completion.chunk", "choices": []any{},
		"usage": map[string]int{"prompt_tokens": len(strings.Fields(prompt)), "completion_tokens": len(deltas), "total_tokens": len(strings.Fields(prompt)) + len(deltas)}}
	b, _ = json.Marshal(usage)
	if !write("data: " + string(b) + "\n\n") {
		return
	}
	write("data: [DONE]\n\n")
}

func (f *fakeAI) put(w http.ResponseWriter, r *http.Request) {
	n := f.putCalls.Add(1)
	if r.URL.Query().Get("wait") != "true" {
		http.Error(w, `{"status":{"error":"want wait=true"}}`, http.StatusBadRequest)
		return
	}
	var req struct {
		Points []map[string]any `json:"points"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Points) == 0 {
		http.Error(w, `{"status":{"error":"Format error in JSON body"},"time":0}`, http.StatusBadRequest)
		return
	}
	if f.onPut != nil && f.onPut(w, n) {
		return
	}
	for _, p := range req.Points {
		if _, ok := p["id"]; !ok {
			http.Error(w, `{"status":{"error":"missing id"},"time":0}`, http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	f.points = append(f.points, req.Points...)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"result":{"operation_id":`+fmt.Sprint(n)+`,"status":"completed"},"status":"ok","time":0.0001}`)
}

// docURLs swaps the server addresses the docs' examples use (Ollama's
// and Qdrant's default ports on loopback) for fake servers, so that the
// examples run against real HTTP on loopback and still give exact outputs.
func docURLs(t testing.TB) *strings.Replacer {
	f := newFakeAI(t)
	return strings.NewReplacer("http://127.0.0.1:11434/v1", f.URL(), "http://127.0.0.1:6333", f.srv.URL)
}

// yamlUnmarshal reads a config's pipelines, ignoring its other keys.
func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }

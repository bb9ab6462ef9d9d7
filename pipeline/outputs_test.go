package pipeline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWebhookRetriesThenDelivers(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried
			return
		}
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Token") != "s3cret" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "headers", http.StatusBadRequest)
			return
		}
		bodies = append(bodies, string(b))
	}))
	defer srv.Close()
	p, _ := build(t, `
- name: hook
  input: {stream: s}
  nodes:
    - {name: all, op: filter, if: "true"}
  output: {webhook: {url: "`+srv.URL+`", timeout: 1s, retries: 2, headers: {X-Token: s3cret}}}
`, nil)
	push(p, `{"a":1}`, `{"a":2}`)
	w := p.outs[0].(*webhook)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Sent, not the server's bodies: the server has the second body a
		// moment before the webhook has its answer, and Close cancels a
		// request in flight (counted failed).
		if w.Sent.Load()+w.Failed.Load() == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = p.Close()
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, " ") != `{"a":1} {"a":2}` || calls != 3 {
		t.Fatalf("bodies %v after %d calls", bodies, calls)
	}
	if w.Sent.Load() != 2 || w.Failed.Load() != 0 {
		t.Fatalf("sent %d failed %d", w.Sent.Load(), w.Failed.Load())
	}
}

func TestWebhookGivesUpOn4xx(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer srv.Close()
	p, _ := build(t, `[{name: h, input: {stream: s}, nodes: [{name: w, op: webhook, webhook: {url: "`+srv.URL+`"}}]}]`, nil)
	push(p, `1`)
	b := p.nodes["w"]
	wh := b.res[0].(*webhook)
	deadline := time.Now().Add(5 * time.Second)
	for wh.Failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = p.Close()
	mu.Lock()
	defer mu.Unlock()
	if wh.Failed.Load() != 1 || calls != 1 {
		t.Fatalf("failed %d after %d calls: a 400 is not retried", wh.Failed.Load(), calls)
	}
}

func TestLogOutputWritesJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	p, _ := build(t, `[{name: l, input: {stream: s}, nodes: [{name: agg, op: aggregate, key: "data.k", window: {count: 2}, fn: count}], output: {log: "`+path+`"}}]`, nil)
	push(p, `{"k":"a"}`, `{"k":"a"}`, `{"k":"b\n"}`, `{"k":"b\n"}`)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"pipeline":"l","key":"a","data":{"key":"a",`) ||
		!strings.Contains(lines[1], `"key":"b\n"`) || !strings.HasPrefix(lines[0], `{"time":"`) {
		t.Fatalf("log:\n%s", b)
	}
}

func TestBadOutputsAreConfigErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`[{name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true"}], output: {webhook: {url: "ftp://x"}}}]`, "want http:// or https://"},
		{`[{name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true"}], output: {room: a, reply: true}}]`, "exactly one of room, reply, log, webhook"},
		{`[{name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: "true"}], output: {log: "/nonexistent/dir/x.log"}}]`, "log output"},
	} {
		specs, err := ParseYAML([]byte(c.src))
		if err == nil {
			err = Check(specs[0], Options{})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.src, err, c.want)
		}
	}
}

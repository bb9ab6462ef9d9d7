package aimodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHashingEmbedder(t *testing.T) {
	h := HashingEmbedder{Dimensions: 384}
	a := h.Embed("The quick brown fox jumps over the lazy dog")
	b := h.Embed("the QUICK brown fox, jumps over the lazy dog!")
	c := h.Embed("quarterly revenue grew by ten percent")
	d := h.Embed("the quick brown fox jumps over a sleeping dog")
	if len(a) != 384 || math.Abs(float64(Norm(a))-1) > 1e-5 {
		t.Fatalf("len %d norm %v", len(a), Norm(a))
	}
	if Dot(a, b) < 0.9999 {
		t.Fatalf("case and punctuation change the vector: %v", Dot(a, b))
	}
	if sd, sc := Dot(a, d), Dot(a, c); sd < 0.5 || sc > 0.3 || sd <= sc {
		t.Fatalf("similar %v, unrelated %v", sd, sc)
	}
	// stable across versions and machines: a golden value
	g := HashingEmbedder{Dimensions: 8}.Embed("hello world again")
	if got := string(AppendVector(nil, g)); got != "[0,0.57735026,0,0.57735026,-0.57735026,0,0,0]" {
		t.Fatalf("golden vector changed: %s", got)
	}
	if z := h.Embed("  ,,, "); Norm(z) != 0 {
		t.Fatalf("no words: %v", Norm(z))
	}
	if u := h.Embed("Ünïcödé ÜNÏCÖDÉ"); Norm(u) == 0 {
		t.Fatal("non-ASCII words ignored")
	}
	if n := testing.AllocsPerRun(100, func() { a = h.EmbedInto(a, "some words to embed here") }); n != 0 {
		t.Fatalf("EmbedInto allocates %v", n)
	}
}

func TestVectors(t *testing.T) {
	v, err := ParseVector(nil, []byte(` [1, -2.5e-1 ,3E2,0] `))
	if err != nil || fmt.Sprint(v) != "[1 -0.25 300 0]" {
		t.Fatalf("%v %v", v, err)
	}
	for _, bad := range []string{``, `[`, `[1,]`, `[1 2]`, `{"a":1}`, `["1"]`, `[1]x`, `[nan]`} {
		if _, err := ParseVector(nil, []byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
		if CheckVector([]byte(bad)) == nil {
			t.Errorf("CheckVector(%q) = nil", bad)
		}
	}
	raw := []byte(` [1, -2.5e-1 ,3E2,0] `)
	if err := CheckVector(raw); err != nil {
		t.Fatalf("CheckVector: %v", err)
	}
	if !errors.Is(CheckVector([]byte(`[ ]`)), errNoVector) {
		t.Fatal("CheckVector of an empty array")
	}
	if n := testing.AllocsPerRun(100, func() { _ = CheckVector(raw) }); n != 0 {
		t.Fatalf("CheckVector allocates %v", n)
	}
	buf := make([]float32, 0, 4)
	if n := testing.AllocsPerRun(100, func() { buf, _ = ParseVector(buf, raw) }); n != 0 {
		t.Fatalf("ParseVector into a large enough dst allocates %v", n)
	}
	if v, err := ParseVector(nil, []byte(`[]`)); err != nil || len(v) != 0 {
		t.Fatalf("empty: %v %v", v, err)
	}
	x := []float32{0.1, -0.2, 1.0 / 3, 1e-8, float32(math.NaN())}
	back, err := ParseVector(nil, AppendVector(nil, x))
	if err != nil || back[2] != x[2] || back[3] != x[3] || back[4] != 0 {
		t.Fatalf("round trip %v %v", back, err)
	}
	if c := Cosine([]float32{1, 1}, []float32{2, 0}); math.Abs(float64(c)-math.Sqrt2/2) > 1e-6 {
		t.Fatalf("cosine %v", c)
	}
	if Cosine([]float32{0, 0}, []float32{1, 0}) != 0 {
		t.Fatal("zero vector")
	}
	a, b := make([]float32, 13), make([]float32, 13)
	var want float32
	for i := range a {
		a[i], b[i] = float32(i), float32(2*i+1)
		want += a[i] * b[i]
	}
	if Dot(a, b) != want {
		t.Fatalf("dot %v want %v", Dot(a, b), want)
	}
}

func TestBreakerAndLimiter(t *testing.T) {
	b := NewBreaker(2, 50*time.Millisecond)
	now := time.Now()
	b.now = func() time.Time { return now }
	ok, _ := b.Allow()
	b.Record(OutcomeFailure, false)
	ok2, _ := b.Allow()
	b.Record(OutcomeFailure, false)
	if !ok || !ok2 || b.State() != "open" {
		t.Fatalf("after 2 failures: %s", b.State())
	}
	if ok, _ := b.Allow(); ok {
		t.Fatal("open breaker allowed an attempt")
	}
	now = now.Add(60 * time.Millisecond)
	ok, probe := b.Allow()
	if !ok || !probe {
		t.Fatal("no probe after the cooldown")
	}
	if ok, _ := b.Allow(); ok {
		t.Fatal("a second probe")
	}
	b.Record(OutcomeFailure, true)
	if b.State() != "open" || b.Opened.Load() != 2 {
		t.Fatalf("failed probe: %s, opened %d", b.State(), b.Opened.Load())
	}
	now = now.Add(60 * time.Millisecond)
	_, probe = b.Allow()
	b.Record(OutcomeSuccess, probe)
	if b.State() != "closed" {
		t.Fatalf("good probe: %s", b.State())
	}
	var nilB *Breaker
	if ok, _ := nilB.Allow(); !ok {
		t.Fatal("nil breaker")
	}

	l := NewLimiter(100, 1)
	start := time.Now()
	for range 6 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 45*time.Millisecond {
		t.Fatalf("6 requests at 100/s in %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := NewLimiter(0.1, 1)
	_ = slow.Wait(ctx)
	if err := slow.Wait(ctx); err == nil {
		t.Fatal("Wait ignored ctx")
	}
	if d := parseRetryAfter("2", time.Now()); d != 2*time.Second {
		t.Fatalf("Retry-After 2: %v", d)
	}
	date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
	if d := parseRetryAfter(date, time.Now()); d < time.Second || d > 4*time.Second {
		t.Fatalf("Retry-After date: %v", d)
	}
}

func TestPolicyRetries(t *testing.T) {
	p := Policy{Retries: 3, Backoff: time.Millisecond}
	n := 0
	err := p.Do(context.Background(), func(context.Context) error {
		n++
		if n < 3 {
			return &Error{Reason: ReasonHTTPStatus, Status: 503}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("%v after %d", err, n)
	}
	n = 0
	err = p.Do(context.Background(), func(context.Context) error { n++; return &Error{Reason: ReasonHTTPStatus, Status: 404} })
	if e := AsError(err); n != 1 || e.Status != 404 || e.Attempts != 1 {
		t.Fatalf("404: %v after %d", err, n)
	}
	n = 0
	err = p.Do(context.Background(), func(context.Context) error { n++; return errors.New("connection refused") })
	if e := AsError(err); n != 4 || e.Reason != ReasonNetwork || e.Attempts != 4 {
		t.Fatalf("network: %v after %d", err, n)
	}
}

// chatServer streams body in chunks of size bytes, flushing each.
func chatServer(t *testing.T, status int, body string, size int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "bad", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(status)
		b := []byte(body)
		for len(b) > 0 {
			k := min(size, len(b))
			_, _ = w.Write(b[:k])
			w.(http.Flusher).Flush()
			b = b[k:]
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestChatStream(t *testing.T) {
	stream := ": ok\n\n" +
		"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"日本\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"語 🎉\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n" +
		"data: [DONE]\n\n"
	for _, size := range []int{1, 2, 5, 1000} {
		srv := chatServer(t, 200, stream, size)
		c := &Client{BaseURL: srv.URL + "/v1/", APIKey: "k"}
		var deltas []string
		req := ChatRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}}}
		res, err := c.ChatStream(context.Background(), req.Body(), func(d string) error { deltas = append(deltas, d); return nil })
		if err != nil || strings.Join(deltas, "|") != "日本|語 🎉" || res.Text != "日本語 🎉" || res.FinishReason != "stop" || res.Usage == nil || res.Usage.TotalTokens != 5 {
			t.Fatalf("size %d: %v %q %+v", size, err, deltas, res)
		}
	}
	for _, tc := range []struct {
		status int
		body   string
		reason Reason
	}{
		{200, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", ReasonStreamEnded},
		{200, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: nope\n\n", ReasonMalformedSSE},
		{200, "event: error\ndata: {\"message\":\"overloaded\"}\n\n", ReasonUpstream},
		{400, `{"error":{"message":"bad model"}}`, ReasonHTTPStatus},
	} {
		srv := chatServer(t, tc.status, tc.body, 3)
		c := &Client{BaseURL: srv.URL + "/v1", APIKey: "k"}
		_, err := c.ChatStream(context.Background(), []byte(`{"stream":true}`), func(string) error { return nil })
		if e := AsError(err); e == nil || e.Reason != tc.reason || e.Attempts != 1 {
			t.Fatalf("%q: %v, want %s", tc.body, err, tc.reason)
		}
	}
	// a cause set by the caller wins
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &Client{BaseURL: srv.URL}
	_, err := c.ChatStream(ctx, []byte(`{}`), func(string) error {
		cancel(&Error{Reason: ReasonCancelled, Err: errors.New("gone")})
		return nil
	})
	if e := AsError(err); e.Reason != ReasonCancelled {
		t.Fatalf("cancelled stream: %v", err)
	}
}

func TestEmbeddingsClient(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			_, _ = io.WriteString(w, `{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}],"usage":{"prompt_tokens":2,"total_tokens":2}}`)
		default:
			_, _ = io.WriteString(w, `{"data":[{"index":0,"embedding":[1,2]}]}`)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v1/embeddings", Policy: Policy{Retries: 1, Backoff: time.Millisecond}}
	v, u, err := c.Embeddings(context.Background(), EmbeddingsRequest{Model: "m", Input: []string{"a", "b"}})
	if err != nil || fmt.Sprint(v) != "[[1 2] [3 4]]" || u.PromptTokens != 2 || calls.Load() != 2 {
		t.Fatalf("%v %v %v after %d", v, u, err, calls.Load())
	}
	_, _, err = c.Embeddings(context.Background(), EmbeddingsRequest{Model: "m", Input: []string{"a", "b"}})
	if e := AsError(err); e.Reason != ReasonBadResponse {
		t.Fatalf("1 vector for 2 inputs: %v", err)
	}
}

func TestQdrantClientAndIDs(t *testing.T) {
	var body string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body = r.Method + " " + r.URL.String() + " " + r.Header.Get("api-key") + " " + string(b)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"result":{"operation_id":1,"status":"completed"},"status":"ok","time":0.001}`)
	}))
	defer srv.Close()
	c := &QdrantClient{BaseURL: srv.URL + "/", APIKey: "qk"}
	p1 := AppendPoint(nil, AppendPointID(nil, float64(1)), "", []byte(`[1,2]`), []byte(`{"a":1}`))
	p2 := AppendPoint(nil, AppendPointID(nil, "x"), "text", []byte(`[3,4]`), nil)
	if err := c.UpsertRaw(context.Background(), "my docs", [][]byte{p1, p2}); err != nil {
		t.Fatal(err)
	}
	want := `PUT /collections/my%20docs/points?wait=true qk {"points":[{"id":1,"vector":[1,2],"payload":{"a":1}},{"id":"` + NameUUID([]byte("x")) + `","vector":{"text":[3,4]}}]}`
	if body != want {
		t.Fatalf("request\n%s\nwant\n%s", body, want)
	}
	for in, want := range map[any]string{
		float64(42): `42`, -1.0: `"` + NameUUID([]byte("-1")) + `"`, 2.5: `"` + NameUUID([]byte("2.5")) + `"`,
		"936DA01F9ABD4d9d80C702AF85C822A8":              `"936da01f-9abd-4d9d-80c7-02af85c822a8"`,
		"urn:uuid:F9168C5E-CEB2-4faa-B6BF-329BF39FA1E4": `"f9168c5e-ceb2-4faa-b6bf-329bf39fa1e4"`,
		"550e8400-e29b-41d4-a716-446655440000":          `"550e8400-e29b-41d4-a716-446655440000"`,
	} {
		if got := string(AppendPointID(nil, in)); got != want {
			t.Errorf("id %v: %s, want %s", in, got, want)
		}
	}
	// RFC 4122 appendix: uuid5(NAMESPACE_URL, "python.org") is not given;
	// check the version and variant bits instead.
	u := NameUUID([]byte("python.org"))
	if u[14] != '5' || !strings.ContainsRune("89ab", rune(u[19])) {
		t.Fatalf("not a v5 UUID: %s", u)
	}
}

func TestLRU(t *testing.T) {
	c := NewLRU[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	c.Get("a")
	c.Put("c", 3) // evicts b
	if _, ok := c.Get("b"); ok || c.Len() != 2 {
		t.Fatal("b not evicted")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatal("a lost")
	}
	k1, k2 := ContentKey("m", "x"), ContentKey("m", "x")
	if ContentKey("m", "x") == ContentKey("m2", "x") || k1 != k2 {
		t.Fatal("content keys")
	}
}

func TestWatchDocuments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", "# Title\n\nSome <b>text</b> & more.")
	write("b.jsonl", "{\"n\":1}\nnot json\n{\"n\":2}\n")
	write("c.json", ` {"whole":true} `)
	write("skip.bin", "x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- WatchDocuments(ctx, DocumentsOptions{Dir: dir, Pattern: "[a-e].*", Poll: 10 * time.Millisecond, Settle: -1},
			func(b []byte) error { got <- string(b); return nil })
	}()
	next := func() string {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no document")
			return ""
		}
	}
	want := []string{
		`{"path":"` + filepath.Join(dir, "a.md") + `","name":"a.md","text":"# Title\n\nSome <b>text</b> & more."}`,
		`{"n":1}`, `{"n":2}`, `{"whole":true}`,
	}
	for _, w := range want {
		if g := next(); g != w {
			t.Fatalf("got %s\nwant %s", g, w)
		}
	}
	// appended lines and a new file are picked up; nothing is read twice
	f, _ := os.OpenFile(filepath.Join(dir, "b.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("{\"n\":3}\n")
	f.Close()
	write("d.txt", "new")
	a, b := next(), next()
	if a+" "+b != `{"n":3} {"path":"`+filepath.Join(dir, "d.txt")+`","name":"d.txt","text":"new"}` {
		t.Fatalf("then %s %s", a, b)
	}
	select {
	case s := <-got:
		t.Fatalf("read again: %s", s)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Once, and settle: a fresh file waits
	write("e.txt", "fresh")
	var n int
	err := WatchDocuments(context.Background(), DocumentsOptions{Dir: dir, Pattern: "e.txt", Once: true, Settle: time.Hour},
		func([]byte) error { n++; return nil })
	if err != nil || n != 0 {
		t.Fatalf("unsettled file read: %d %v", n, err)
	}
}

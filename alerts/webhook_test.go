package alerts

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hook is a test endpoint: it answers with the statuses given, in turn
// (the last one repeats), and records what it was sent.
type hook struct {
	mu       sync.Mutex
	statuses []int
	events   []Event
	headers  []http.Header
	arrived  chan struct{} // one token per request, when set
	block    chan struct{} // requests wait for it to close (or their cancel), when set
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev Event
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.headers = append(h.headers, r.Header.Clone())
	status := h.statuses[min(len(h.events), len(h.statuses))-1]
	h.mu.Unlock()
	if h.arrived != nil {
		h.arrived <- struct{}{}
	}
	if h.block != nil {
		select {
		case <-h.block:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

func (h *hook) got() ([]Event, []http.Header) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...), append([]http.Header(nil), h.headers...)
}

func serve(t *testing.T, h *hook) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestWebhook(t *testing.T, o WebhookOptions) *Webhook {
	t.Helper()
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	o.Logger = quietLog()
	w, err := NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func testEvent(rule string) Event {
	return Event{Rule: rule, State: StateFiring, Severity: SeverityCritical, Metric: "m", Op: ">", Value: 2, Threshold: 1, At: 1000, Since: 1000}
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	h := &hook{statuses: []int{503, 200}}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h) + "/alerts", Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Env": "test"}})
	w.Notify(testEvent("a"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	events, headers := h.got()
	if len(events) != 2 || events[1] != testEvent("a") {
		t.Fatalf("server got %+v, want the event twice", events)
	}
	for _, hd := range headers {
		if hd.Get("Content-Type") != "application/json" || hd.Get("Authorization") != "Bearer s3cret" || hd.Get("X-Env") != "test" {
			t.Errorf("headers = %v", hd)
		}
	}
	if s := w.Stats(); s != (WebhookStats{Sent: 1, Retries: 1}) {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhook4xxNotRetried(t *testing.T) {
	h := &hook{statuses: []int{400}}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h)})
	w.Notify(testEvent("a"))
	_ = w.Close()
	if events, _ := h.got(); len(events) != 1 {
		t.Errorf("server got %d requests, want 1", len(events))
	}
	if s := w.Stats(); s != (WebhookStats{Failed: 1}) {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhookRetriesSpent(t *testing.T) {
	h := &hook{statuses: []int{500, 429, 502}}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h), Retries: new(2)})
	w.Notify(testEvent("a"))
	_ = w.Close()
	if events, _ := h.got(); len(events) != 3 {
		t.Errorf("server got %d requests, want 3", len(events))
	}
	if s := w.Stats(); s != (WebhookStats{Failed: 1, Retries: 2}) {
		t.Errorf("stats = %+v", s)
	}

	// Retries 0: one attempt only.
	h = &hook{statuses: []int{500}}
	w = newTestWebhook(t, WebhookOptions{URL: serve(t, h), Retries: new(0)})
	w.Notify(testEvent("a"))
	_ = w.Close()
	if s := w.Stats(); s != (WebhookStats{Failed: 1}) {
		t.Errorf("retries 0: stats = %+v", s)
	}
}

func TestWebhookNetworkErrorRetried(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close() // connection refused from now on
	w := newTestWebhook(t, WebhookOptions{URL: url, Retries: new(1)})
	w.Notify(testEvent("a"))
	_ = w.Close()
	if s := w.Stats(); s != (WebhookStats{Failed: 1, Retries: 1}) {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhookQueueFull(t *testing.T) {
	h := &hook{statuses: []int{200}, arrived: make(chan struct{}, 8), block: make(chan struct{})}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h), Queue: 1})
	w.Notify(testEvent("1"))
	<-h.arrived // 1 is in flight, the queue is empty
	w.Notify(testEvent("2"))
	w.Notify(testEvent("3"))
	w.Notify(testEvent("4"))
	if s := w.Stats(); s.Dropped != 2 {
		t.Errorf("dropped = %d, want 2", s.Dropped)
	}
	close(h.block)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	events, _ := h.got()
	if len(events) != 2 || events[0].Rule != "1" || events[1].Rule != "2" {
		t.Errorf("server got %+v, want 1 and 2", events)
	}
	if s := w.Stats(); s != (WebhookStats{Sent: 2, Dropped: 2}) {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhookCloseFlushes(t *testing.T) {
	h := &hook{statuses: []int{200}}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h)})
	for range 5 {
		w.Notify(testEvent("a"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Sent != 5 {
		t.Errorf("stats = %+v, want 5 sent", s)
	}
	w.Notify(testEvent("late"))
	if s := w.Stats(); s.Dropped != 1 {
		t.Errorf("Notify after Close: stats = %+v, want 1 dropped", s)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWebhookCloseGivesUp(t *testing.T) {
	h := &hook{statuses: []int{200}, arrived: make(chan struct{}, 8), block: make(chan struct{})} // never answers
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h), FlushTimeout: 20 * time.Millisecond})
	for range 3 {
		w.Notify(testEvent("a"))
	}
	<-h.arrived
	begin := time.Now()
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "3 queued events not delivered within flush_timeout = 20ms") {
		t.Errorf("Close = %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if s := w.Stats(); s != (WebhookStats{Dropped: 3}) {
		t.Errorf("stats = %+v", s)
	}
}

// Notify may race with Close from other goroutines (go test -race).
func TestWebhookNotifyDuringClose(t *testing.T) {
	h := &hook{statuses: []int{200}}
	w := newTestWebhook(t, WebhookOptions{URL: serve(t, h), Queue: 4})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				w.Notify(testEvent("a"))
			}
		}()
	}
	time.Sleep(time.Millisecond)
	_ = w.Close()
	wg.Wait()
	if s := w.Stats(); s.Sent+s.Failed+s.Dropped != 800 {
		t.Errorf("stats = %+v: events unaccounted for", s)
	}
}

func TestWebhookOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o    WebhookOptions
		want string
	}{
		{WebhookOptions{}, "alerts: webhook: url is empty"},
		{WebhookOptions{URL: "ftp://example.com/x"}, `alerts: webhook: url "ftp://example.com/x": scheme "ftp": want http or https`},
		{WebhookOptions{URL: "example.com/hook"}, `scheme "": want http or https`},
		{WebhookOptions{URL: "http:///path"}, `alerts: webhook: url "http:///path" has no host`},
		{WebhookOptions{URL: "http://a b/"}, `alerts: webhook: url "http://a b/"`},
		{WebhookOptions{URL: "http://h", Timeout: -1}, "timeout = -1ns: want ≥ 0"},
		{WebhookOptions{URL: "http://h", Retries: new(-1)}, "retries = -1: want 0..100"},
		{WebhookOptions{URL: "http://h", Backoff: -1}, "backoff = -1ns"},
		{WebhookOptions{URL: "http://h", Queue: -1}, "queue = -1"},
		{WebhookOptions{URL: "http://h", FlushTimeout: -1}, "flush_timeout = -1ns"},
		{WebhookOptions{URL: "http://h", Headers: map[string]string{"Bad Name": "v"}}, `headers: "Bad Name" is not a valid header name`},
		{WebhookOptions{URL: "http://h", Headers: map[string]string{"X-A": "v\r\nX-B: w"}}, "headers: X-A: the value holds a CR, LF or NUL"},
	} {
		_, err := NewWebhook(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
	for _, u := range []string{"http://127.0.0.1:9/x", "https://hooks.example.com/services/T0/B0?k=v"} {
		o := WebhookOptions{URL: u}
		if err := o.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

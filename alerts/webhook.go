package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBackoff caps the wait between two attempts of one event, whatever
// Backoff and a Retry-After header say.
const maxBackoff = 30 * time.Second

// WebhookOptions configure a Webhook. Every field but URL is optional.
type WebhookOptions struct {
	// URL is where events are POSTed, http:// or https://. Required.
	URL string `yaml:"url" json:"url"`
	// Timeout bounds one attempt (connect, send, response). Default 5s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// Retries is how many times a failed attempt is retried: after a
	// network error, a timeout, a 5xx or a 429. Other statuses (4xx) are
	// not retried. Default 3 (nil); 0 for none.
	Retries *int `yaml:"retries" json:"retries"`
	// Backoff is the wait before the first retry; it doubles for each next
	// one, up to 30s. A 429's or 503's Retry-After (seconds) lengthens
	// it. Default 500ms.
	Backoff time.Duration `yaml:"backoff" json:"backoff"`
	// Queue is how many events may wait for delivery; when it is full, new
	// events are dropped and counted (WebhookStats.Dropped). Default 256.
	Queue int `yaml:"queue" json:"queue"`
	// Headers are set on every request (after Content-Type, so they may
	// replace it), e.g. Authorization.
	Headers map[string]string `yaml:"headers" json:"headers"`
	// FlushTimeout bounds how long Close waits for queued events to be
	// delivered before it gives up on them. Default 2s.
	FlushTimeout time.Duration `yaml:"flush_timeout" json:"flush_timeout"`
	// Client sends the requests. Default a client of the webhook's own
	// over http.DefaultTransport.
	Client *http.Client `yaml:"-" json:"-"`
	// Logger receives delivery failures and drops. Default slog.Default().
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Validate reports every setting of o that cannot work, naming each.
func (o *WebhookOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts: webhook: "+format, args...))
	}
	if o.URL == "" {
		bad("url is empty: want http://HOST/PATH or https://HOST/PATH")
	} else if u, err := url.Parse(o.URL); err != nil {
		bad("url %q: %v", o.URL, err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url %q: scheme %q: want http or https", o.URL, u.Scheme)
	} else if u.Host == "" {
		bad("url %q has no host", o.URL)
	}
	if o.Timeout < 0 {
		bad("timeout = %v: want ≥ 0 (0 means 5s)", o.Timeout)
	}
	if o.Retries != nil && (*o.Retries < 0 || *o.Retries > 100) {
		bad("retries = %d: want 0..100", *o.Retries)
	}
	if o.Backoff < 0 {
		bad("backoff = %v: want ≥ 0 (0 means 500ms)", o.Backoff)
	}
	if o.Queue < 0 || o.Queue > 1<<20 {
		bad("queue = %d: want 0..1048576 (0 means 256)", o.Queue)
	}
	if o.FlushTimeout < 0 {
		bad("flush_timeout = %v: want ≥ 0 (0 means 2s)", o.FlushTimeout)
	}
	for k, v := range o.Headers {
		if !validHeaderName(k) {
			bad("headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			bad("headers: %s: the value holds a CR, LF or NUL", k)
		}
	}
	return errors.Join(errs...)
}

// WebhookStats count a Webhook's events since NewWebhook.
type WebhookStats struct {
	Sent    uint64 // delivered (2xx)
	Failed  uint64 // given up on: a status not retried, or retries spent
	Dropped uint64 // never attempted: queue full, Notify after Close, or Close's flush timed out
	Retries uint64 // attempts after a first one, all events together
}

// Webhook is a Notifier that POSTs each Event as JSON to a URL, from a
// goroutine of its own, so that Notify never blocks the evaluator. Notify,
// Stats and Close are safe from any goroutine.
type Webhook struct {
	opts    WebhookOptions // defaults applied
	retries int
	client  *http.Client
	log     *slog.Logger

	// ctx is cancelled when Close gives up waiting: it aborts the request
	// and backoff in flight.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	// mu guards closed and q's closing: Notify sends on q under the read
	// lock, Close closes q under the write lock, so no send hits a closed
	// channel.
	mu     sync.RWMutex
	closed bool
	q      chan Event

	sent, failed, dropped, retried atomic.Uint64
}

// NewWebhook returns a started Webhook, or an error naming every setting
// of opts that cannot work. Close it to stop its goroutine.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	w := &Webhook{opts: opts, retries: 3, client: opts.Client, log: opts.Logger, done: make(chan struct{})}
	if opts.Retries != nil {
		w.retries = *opts.Retries
	}
	if w.opts.Timeout == 0 {
		w.opts.Timeout = 5 * time.Second
	}
	if w.opts.Backoff == 0 {
		w.opts.Backoff = 500 * time.Millisecond
	}
	if w.opts.Queue == 0 {
		w.opts.Queue = 256
	}
	if w.opts.FlushTimeout == 0 {
		w.opts.FlushTimeout = 2 * time.Second
	}
	if w.client == nil {
		w.client = &http.Client{}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.opts.Headers = make(map[string]string, len(opts.Headers))
	for k, v := range opts.Headers {
		w.opts.Headers[k] = v
	}
	w.q = make(chan Event, w.opts.Queue)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// Notify queues ev for delivery, or drops it (and counts it) when the
// queue is full or the webhook is closed. It never blocks.
func (w *Webhook) Notify(ev Event) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.q <- ev:
	default:
		// Log the 1st, 2nd, 4th, 8th, … drop: enough to be seen, never a flood.
		if n := w.dropped.Add(1); n&(n-1) == 0 {
			w.log.Warn("alerts: webhook queue full, event dropped", "url", w.opts.URL, "queue", w.opts.Queue, "dropped", n, "rule", ev.Rule)
		}
	}
}

// Stats returns the webhook's counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retried.Load()}
}

// Close stops taking events, waits up to FlushTimeout for the queued ones
// to be delivered, then aborts what is left and stops the goroutine. It
// returns an error if some events were given up on that way. Later calls
// wait for the first to finish and return nil.
func (w *Webhook) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	close(w.q)
	w.mu.Unlock()

	before := w.dropped.Load()
	t := time.NewTimer(w.opts.FlushTimeout)
	select {
	case <-w.done:
		t.Stop()
		w.cancel()
		return nil
	case <-t.C:
	}
	w.cancel()
	<-w.done
	if n := w.dropped.Load() - before; n > 0 {
		return fmt.Errorf("alerts: webhook %s: %d queued events not delivered within flush_timeout = %v", w.opts.URL, n, w.opts.FlushTimeout)
	}
	return nil
}

// run delivers the queued events one by one until q is closed and empty.
// Once ctx is cancelled it drops what is left.
func (w *Webhook) run() {
	defer close(w.done)
	for ev := range w.q {
		if w.ctx.Err() != nil {
			w.dropped.Add(1)
			continue
		}
		w.deliver(ev)
	}
}

// deliver POSTs ev, retrying as the options say.
func (w *Webhook) deliver(ev Event) {
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: Event holds strings and finite numbers
		w.failed.Add(1)
		w.log.Error("alerts: webhook cannot encode event", "url", w.opts.URL, "rule", ev.Rule, "err", err)
		return
	}
	backoff := w.opts.Backoff
	for attempt := 0; ; attempt++ {
		retry, wait, err := w.attempt(body)
		if err == nil {
			w.sent.Add(1)
			return
		}
		if !retry || attempt >= w.retries || w.ctx.Err() != nil {
			msg := "alerts: webhook failed"
			if w.ctx.Err() != nil && retry {
				msg = "alerts: webhook closed before the event was delivered"
				w.dropped.Add(1)
			} else {
				w.failed.Add(1)
			}
			w.log.Warn(msg, "url", w.opts.URL, "rule", ev.Rule, "state", ev.State, "attempts", attempt+1, "err", err)
			return
		}
		w.retried.Add(1)
		t := time.NewTimer(min(max(backoff, wait), maxBackoff))
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// attempt POSTs body once. It reports whether a failure may be retried,
// and how long the server asked to wait (Retry-After), if it did.
func (w *Webhook) attempt(body []byte) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "streamd-alerts")
	for k, v := range w.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, 0, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return true, wait, fmt.Errorf("alerts: webhook: %s", resp.Status)
	}
	return false, 0, fmt.Errorf("alerts: webhook: %s (not retried)", resp.Status)
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

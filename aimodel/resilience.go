package aimodel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Reason says why a call failed, in a word: what the pipeline ops put in
// the "reason" of their error records.
type Reason string

// Reasons.
const (
	ReasonBadInput     Reason = "bad_input"     // the event lacks what the op needs (text, vector, template field)
	ReasonCircuitOpen  Reason = "circuit_open"  // the circuit breaker is open: no request was sent
	ReasonTimeout      Reason = "timeout"       // the request (or the stream, idle) timed out
	ReasonHTTPStatus   Reason = "http_status"   // the server answered a non-2xx status (Status says which)
	ReasonNetwork      Reason = "network"       // connection refused, reset, DNS, …
	ReasonBadResponse  Reason = "bad_response"  // a 2xx answer whose body is not what the API documents
	ReasonMalformedSSE Reason = "malformed_sse" // a streamed event that is not valid
	ReasonStreamEnded  Reason = "stream_ended"  // the stream broke off before its end ([DONE] or a finish_reason)
	ReasonUpstream     Reason = "upstream_error"
	ReasonOverloaded   Reason = "overloaded" // max_in_flight events were waiting already (overflow: error)
	ReasonCancelled    Reason = "cancelled"  // nobody listens any more, or the pipeline closed
)

// Error is a failed call: why (Reason), the HTTP status when there was
// one, and how many attempts were made. Its message never contains
// credentials.
type Error struct {
	Reason   Reason
	Status   int // HTTP status, 0 when none
	Attempts int
	Err      error
	// RetryAfter is what the server asked for (429/503 Retry-After), 0
	// when it did not.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the failure is worth another attempt: 429,
// 5xx, network errors and timeouts are; other statuses, malformed
// answers and an open breaker are not.
func (e *Error) Retryable() bool {
	switch e.Reason {
	case ReasonNetwork, ReasonTimeout:
		return true
	case ReasonHTTPStatus:
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return false
}

// AsError returns err as an *Error, classifying errors that are not one
// (a context deadline is a timeout, anything else from the transport a
// network error).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &Error{Reason: ReasonTimeout, Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Reason: ReasonCancelled, Err: err}
	}
	return &Error{Reason: ReasonNetwork, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError makes the error of a non-2xx answer.
func statusError(resp *http.Response, body []byte) *Error {
	msg := http.StatusText(resp.StatusCode)
	if len(body) > 0 {
		if len(body) > 200 {
			body = body[:200]
		}
		msg += ": " + string(body)
	}
	return &Error{Reason: ReasonHTTPStatus, Status: resp.StatusCode, Err: fmt.Errorf("HTTP %d %s", resp.StatusCode, msg),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Policy is how a client retries, and what guards its requests. The
// zero value tries once, with no breaker and no rate limit.
type Policy struct {
	// Retries after the first attempt, for retryable failures.
	Retries int
	// Backoff is the wait before the first retry, doubled after each
	// (with ±20 % jitter), capped at MaxBackoff. Defaults 100ms and 5s.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After (default 30s). A
	// Retry-After longer than the backoff replaces it.
	MaxRetryAfter time.Duration
	// Breaker, when set, is asked before every attempt and told each
	// outcome.
	Breaker *Breaker
	// Limiter, when set, spaces every attempt (retries included).
	Limiter *Limiter
	// Retried, when set, counts retries (attempts after the first).
	Retried *atomic.Uint64
}

// Do calls attempt until it succeeds, fails with an error that is not
// retryable, runs out of retries, or ctx ends. attempt's error should be
// an *Error (others are classified by AsError). It returns the last
// error as an *Error with Attempts set, or nil.
func (p *Policy) Do(ctx context.Context, attempt func(ctx context.Context) error) error {
	backoff := p.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	maxBackoff := p.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	maxRA := p.MaxRetryAfter
	if maxRA <= 0 {
		maxRA = 30 * time.Second
	}
	var last *Error
	for n := 1; ; n++ {
		ok, probe := p.Breaker.Allow()
		if !ok {
			return &Error{Reason: ReasonCircuitOpen, Attempts: n - 1, Err: errBreakerOpen(last)}
		}
		if p.Limiter != nil {
			if err := p.Limiter.Wait(ctx); err != nil {
				p.Breaker.Record(OutcomeNeutral, probe)
				if last == nil {
					last = AsError(ctx.Err())
				}
				return withAttempts(last, n-1)
			}
		}
		err := attempt(ctx)
		if err == nil {
			p.Breaker.Record(OutcomeSuccess, probe)
			return nil
		}
		last = AsError(err)
		switch {
		case ctx.Err() != nil:
			p.Breaker.Record(OutcomeNeutral, probe)
		case last.Retryable():
			p.Breaker.Record(OutcomeFailure, probe)
		default:
			p.Breaker.Record(OutcomeSuccess, probe) // the server is up: it answered
		}
		if !last.Retryable() || n > p.Retries || ctx.Err() != nil {
			return withAttempts(last, n)
		}
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		if ra := min(last.RetryAfter, maxRA); ra > wait {
			wait = ra
		}
		backoff = min(backoff*2, maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return withAttempts(last, n)
		case <-t.C:
		}
		if p.Retried != nil {
			p.Retried.Add(1)
		}
	}
}

func errBreakerOpen(last *Error) error {
	if last != nil {
		return fmt.Errorf("circuit breaker open (last failure: %v)", last)
	}
	return errors.New("circuit breaker open")
}

func withAttempts(e *Error, n int) *Error {
	c := *e
	c.Attempts = n
	return &c
}

// Outcome is what a Breaker is told about an attempt.
type Outcome int

// Outcomes.
const (
	OutcomeSuccess Outcome = iota // the server answered (even a 4xx)
	OutcomeFailure                // a retryable failure: 429, 5xx, network, timeout
	OutcomeNeutral                // cancelled by us: says nothing about the server
)

// Breaker is a circuit breaker: after Failures consecutive failed
// attempts it opens and refuses every attempt for Cooldown; then it is
// half-open and lets one probe through: its success closes the breaker,
// its failure opens it for another Cooldown. Safe for concurrent use; a
// nil *Breaker allows everything.
type Breaker struct {
	failures int
	cooldown time.Duration
	now      func() time.Time

	mu       sync.Mutex
	state    int // breakerClosed, breakerOpen, breakerHalfOpen
	consec   int
	openedAt time.Time
	probing  bool

	// Opened counts how many times the breaker opened.
	Opened atomic.Uint64
}

const (
	breakerClosed = iota
	breakerOpen
	breakerHalfOpen
)

// NewBreaker returns a breaker that opens after failures consecutive
// failures (≤ 0: never) and probes again after cooldown (default 10s).
func NewBreaker(failures int, cooldown time.Duration) *Breaker {
	if cooldown <= 0 {
		cooldown = 10 * time.Second
	}
	return &Breaker{failures: failures, cooldown: cooldown, now: time.Now}
}

// Allow reports whether an attempt may go now, and whether it is the
// half-open state's probe (one at a time). The caller must Record the
// outcome of every allowed attempt, passing probe back.
func (b *Breaker) Allow() (ok, probe bool) {
	if b == nil || b.failures <= 0 {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return false, false
		}
		b.state = breakerHalfOpen
		fallthrough
	case breakerHalfOpen:
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, true
	}
	return true, false
}

// Record tells the breaker an allowed attempt's outcome.
func (b *Breaker) Record(o Outcome, probe bool) {
	if b == nil || b.failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch o {
	case OutcomeSuccess:
		b.consec = 0
		if probe {
			b.state = breakerClosed
		}
	case OutcomeFailure:
		b.consec++
		if probe || (b.state == breakerClosed && b.consec >= b.failures) {
			b.state = breakerOpen
			b.openedAt = b.now()
			b.Opened.Add(1)
		}
	}
}

// State returns "closed", "open" or "half_open".
func (b *Breaker) State() string {
	if b == nil {
		return "closed"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if b.now().Sub(b.openedAt) >= b.cooldown {
			return "half_open"
		}
		return "open"
	case breakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// Limiter spaces requests to at most Rate per second, with bursts of up
// to Burst (a GCRA token bucket). Safe for concurrent use; a nil
// *Limiter never waits.
type Limiter struct {
	interval time.Duration
	tau      time.Duration // (burst-1) × interval
	mu       sync.Mutex
	tat      time.Time // theoretical arrival time of the next request
}

// NewLimiter returns a limiter of rate requests per second (≤ 0: nil, no
// limit) and burst (at least 1).
func NewLimiter(rate float64, burst int) *Limiter {
	if rate <= 0 {
		return nil
	}
	iv := time.Duration(float64(time.Second) / rate)
	return &Limiter{interval: iv, tau: time.Duration(max(burst, 1)-1) * iv}
}

// Wait blocks until a request may go, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	at := tat.Add(-l.tau)
	if at.Before(now) {
		at = now
	}
	l.tat = tat.Add(l.interval)
	l.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package engine

import (
	"streamd/protocol"
)

// Per-connection rate limits (Config.MaxMessagesPerSecond and
// MaxBytesPerSecond): a token bucket per connection, refilled from the
// loop's clock (no clock read of its own). A message over the limit is
// dropped, counted in the `rate_limited` error code, and answered with an
// `error` at most once per second per connection, so a flood cannot turn
// the server into an amplifier. The buckets hold one second of the rate
// (the burst). With rate_limit_overflow: block, a message over the limit
// is not dropped: it waits, copied, until the buckets hold its tokens,
// and the connection's frames are handled no further meanwhile (netpoll
// PauseReading: they wait in its inbound buffer, and a producer that
// sends past the paused-read limit is closed with 1008). The loop checks
// every bpTick.

// Rate limit overflow (Config.RateLimitOverflow).
const (
	RateDrop  = "drop"
	RateBlock = "block"
)

// CodeRateLimited answers messages dropped by a rate limit.
const CodeRateLimited = "rate_limited"

var errRateLimited = &protocol.Error{Code: CodeRateLimited, Message: "over this connection's rate limit (max_messages_per_second / max_bytes_per_second): message dropped"}

// bucket is a token bucket (loop-owned).
type bucket struct {
	tokens float64
	last   int64 // loop time of the last refill (ns)
}

// refill adds rate tokens per second since the last refill, up to burst.
func (b *bucket) refill(now int64, rate, burst float64) {
	if b.last == 0 {
		b.tokens, b.last = burst, now
	}
	if d := now - b.last; d > 0 {
		b.tokens = min(burst, b.tokens+rate*float64(d)/1e9)
		b.last = now
	}
}

// msgBurst is the message bucket's size: a second of the rate, and at
// least one message (a rate below 1/s still lets one through now and
// then).
func msgBurst(rate float64) float64 { return max(rate, 1) }

// tokensFor refills s's buckets and reports whether they hold what a
// message of size bytes takes, without taking it. Loop-only.
func (ls *loopState) tokensFor(s *session, size int, now int64) bool {
	cfg := &ls.e.cfg
	ok := true
	if r := cfg.MaxMessagesPerSecond; r > 0 {
		s.msgBucket.refill(now, r, msgBurst(r))
		ok = s.msgBucket.tokens >= 1
	}
	if r := float64(cfg.MaxBytesPerSecond); r > 0 {
		s.byteBucket.refill(now, r, r)
		ok = ok && s.byteBucket.tokens >= float64(size)
	}
	return ok
}

// allowed applies s's rate limits to one message of size bytes; over a
// limit it answers (at most once a second) and returns false. Loop-only.
func (ls *loopState) allowed(s *session, size int) bool {
	cfg := &ls.e.cfg
	now := ls.np.Now()
	ok := ls.tokensFor(s, size, now)
	if ok { // both buckets had enough: take from both (a message over one limit costs neither)
		if cfg.MaxMessagesPerSecond > 0 {
			s.msgBucket.tokens--
		}
		if cfg.MaxBytesPerSecond > 0 {
			s.byteBucket.tokens -= float64(size)
		}
		if cfg.FlowControl && !s.flowPaused && ls.nearLimit(s) {
			ls.flow(s, true)
		}
		return true
	}
	if cfg.FlowControl && !s.flowPaused {
		ls.flow(s, true)
	}
	if cfg.RateLimitOverflow == RateBlock {
		return false // the caller holds it (rateHold)
	}
	ls.counters.errors.Add(1)
	ls.metrics.errCodes[errorCodeIndex(CodeRateLimited)].Inc()
	if now-s.limitedAt >= 1e9 {
		s.limitedAt = now
		ls.replyErrorUncounted(s, nil, errRateLimited)
	}
	return false
}

// Flow control (Config.FlowControl): before a producer runs into its rate
// limit, the engine tells it to pause — {"type":"flow","state":"pause"}
// once its bucket is down to half — and to resume once the bucket is 90%
// full again ({"type":"flow","state":"resume"}), checked every bpTick.
// The Go and browser clients hold their publishes and events while
// paused; with fewer requests in flight than half the limit (the clients'
// MaxInFlight, 64 by default) a producer never meets rate_limited.

// nearLimit reports whether s's buckets are down to half. Loop-only.
func (ls *loopState) nearLimit(s *session) bool {
	cfg := &ls.e.cfg
	if r := cfg.MaxMessagesPerSecond; r > 0 && s.msgBucket.tokens < r/2 {
		return true
	}
	if r := float64(cfg.MaxBytesPerSecond); r > 0 && s.byteBucket.tokens < r/2 {
		return true
	}
	return false
}

// The flow notices, as JSON envelopes (envelopeFrame transcodes them).
var (
	flowPause  = []byte(`{"type":"flow","state":"pause"}`)
	flowResume = []byte(`{"type":"flow","state":"resume"}`)
)

// flow sends s a pause or resume. Loop-only.
func (ls *loopState) flow(s *session, pause bool) {
	msg := flowResume
	if pause {
		msg = flowPause
		s.flowPaused = true
		ls.paused = append(ls.paused, s)
		ls.pausedCount.Store(int32(len(ls.paused)))
		ls.kickBackpressure()
		ls.counters.flowPauses.Add(1)
	} else {
		s.flowPaused = false
	}
	s.write(ls.envelopeFrame(s, msg))
}

// resumeFlows resumes the paused producers whose buckets are half full
// again. Loop-only.
func (ls *loopState) resumeFlows() {
	cfg := &ls.e.cfg
	now := ls.np.Now()
	n := 0
	for _, s := range ls.paused {
		if s.closed {
			continue
		}
		ready := s.held == nil // a producer waiting for a pipeline stays paused
		if r := cfg.MaxMessagesPerSecond; ready && r > 0 {
			s.msgBucket.refill(now, r, msgBurst(r))
			ready = s.msgBucket.tokens >= min(r, msgBurst(r))*0.9
		}
		if r := float64(cfg.MaxBytesPerSecond); ready && r > 0 {
			s.byteBucket.refill(now, r, r)
			ready = s.byteBucket.tokens >= r*0.9
		}
		if ready {
			ls.flow(s, false)
			continue
		}
		ls.paused[n] = s
		n++
	}
	clear(ls.paused[n:])
	ls.paused = ls.paused[:n]
	ls.pausedCount.Store(int32(n))
}

// rateHold parks a message over s's rate limit and pauses s's reading
// (rate_limit_overflow: block). t0 is when it was read. Loop-only.
func (ls *loopState) rateHold(s *session, op byte, payload []byte, t0 int64) {
	s.rateBuf = append(s.rateBuf[:0], payload...)
	s.rateOp, s.rateT0, s.rateHeld = op, t0, true
	s.conn.PauseReading()
	ls.rateHolding = append(ls.rateHolding, s)
	ls.rateHeldCount.Store(int32(len(ls.rateHolding)))
	ls.kickBackpressure()
	ls.counters.rateBlocked.Add(1)
}

// releaseRate hands the held messages whose connections have the tokens
// again on (handleMessage: counted received once, when read) and resumes
// their reading. A connection closing, or closed for auth, meanwhile
// drops its message, as its unread frames are. Loop-only.
func (ls *loopState) releaseRate() {
	now := ls.np.Now()
	n := 0
	for _, s := range ls.rateHolding {
		if !s.rateHeld || s.closed || !s.conn.Open() {
			s.rateHeld, s.rateBuf = false, nil
			continue
		}
		if !ls.tokensFor(s, len(s.rateBuf), now) {
			ls.rateHolding[n] = s
			n++
			continue
		}
		ls.allowed(s, len(s.rateBuf)) // takes the tokens tokensFor just found (and may pause the flow)
		ls.e.handleMessage(s, s.rateOp, s.rateBuf, s.rateT0)
		s.rateHeld = false
		if cap(s.rateBuf) > 64<<10 { // a big message's copy is not kept per connection
			s.rateBuf = nil
		}
		if s.held == nil {
			s.conn.ResumeReading()
		}
	}
	clear(ls.rateHolding[n:])
	ls.rateHolding = ls.rateHolding[:n]
	ls.rateHeldCount.Store(int32(n))
}

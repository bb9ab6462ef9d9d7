package engine

import (
	"streamd/netpoll"
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

// take refills at rate per second up to burst and takes n tokens; it
// reports whether there were enough.
func (b *bucket) take(now int64, rate, n float64) bool {
	if b.last == 0 {
		b.tokens, b.last = rate, now
	}
	if d := now - b.last; d > 0 {
		b.tokens = min(rate, b.tokens+rate*float64(d)/1e9)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// allowed applies s's rate limits to one message of size bytes; over a
// limit it answers (at most once a second) and returns false. Loop-only.
func (ls *loopState) allowed(s *session, size int) bool {
	cfg := &ls.e.cfg
	now := ls.np.Now()
	ok := true
	if cfg.MaxMessagesPerSecond > 0 && !s.msgBucket.take(now, cfg.MaxMessagesPerSecond, 1) {
		ok = false
	}
	if ok && cfg.MaxBytesPerSecond > 0 && !s.byteBucket.take(now, float64(cfg.MaxBytesPerSecond), float64(size)) {
		ok = false
	}
	if ok {
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

// flow sends s a pause or resume. Loop-only.
func (ls *loopState) flow(s *session, pause bool) {
	state := "resume"
	if pause {
		state = "pause"
		s.flowPaused = true
		ls.paused = append(ls.paused, s)
		ls.pausedCount.Store(int32(len(ls.paused)))
		ls.counters.flowPauses.Add(1)
	} else {
		s.flowPaused = false
	}
	b := append(append([]byte(`{"type":"flow","state":"`), state...), `"}`...)
	s.write(ls.envelopeFrame(s, b))
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
			s.msgBucket.take(now, r, 0)
			ready = s.msgBucket.tokens >= r*0.9
		}
		if r := float64(cfg.MaxBytesPerSecond); ready && r > 0 {
			s.byteBucket.take(now, r, 0)
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
// (rate_limit_overflow: block). Loop-only.
func (ls *loopState) rateHold(s *session, op byte, payload []byte) {
	if len(s.rateBuf) == 0 || len(payload) == 0 || &payload[0] != &s.rateBuf[0] {
		s.rateBuf = append(s.rateBuf[:0], payload...)
	}
	s.rateOp = op
	if !s.rateHeld {
		s.rateHeld = true
		if ls.releasingRate {
			return // releaseRate keeps it on its list
		}
		s.conn.PauseReading()
		ls.rateHolding = append(ls.rateHolding, s)
		ls.rateHeldCount.Store(int32(len(ls.rateHolding)))
		ls.counters.rateBlocked.Add(1)
	}
}

// releaseRate hands the held messages whose connections have the tokens
// again to onMessage and resumes their reading. Loop-only.
func (ls *loopState) releaseRate() {
	cfg := &ls.e.cfg
	now := ls.np.Now()
	n := 0
	for _, s := range ls.rateHolding {
		if s.closed || !s.rateHeld {
			s.rateHeld = false
			continue
		}
		ready := true
		if r := cfg.MaxMessagesPerSecond; r > 0 {
			s.msgBucket.take(now, r, 0)
			ready = s.msgBucket.tokens >= 1
		}
		if r := float64(cfg.MaxBytesPerSecond); ready && r > 0 {
			s.byteBucket.take(now, r, 0)
			ready = s.byteBucket.tokens >= float64(len(s.rateBuf))
		}
		if !ready {
			ls.rateHolding[n] = s
			n++
			continue
		}
		s.rateHeld = false
		ls.releasingRate = true
		ls.e.onMessage(s, s.rateOp, s.rateBuf, netpoll.MonoNow())
		ls.releasingRate = false
		if s.rateHeld { // not in after all (a limit changed by reload)
			ls.rateHolding[n] = s
			n++
			continue
		}
		if s.held == nil {
			s.conn.ResumeReading()
		}
	}
	clear(ls.rateHolding[n:])
	ls.rateHolding = ls.rateHolding[:n]
	ls.rateHeldCount.Store(int32(n))
}

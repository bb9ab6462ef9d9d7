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
// (the burst).

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
		return true
	}
	ls.counters.errors.Add(1)
	ls.metrics.errCodes[errorCodeIndex(CodeRateLimited)].Inc()
	if now-s.limitedAt >= 1e9 {
		s.limitedAt = now
		ls.replyErrorUncounted(s, nil, errRateLimited)
	}
	return false
}

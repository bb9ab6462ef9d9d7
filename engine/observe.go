package engine

import (
	"streamd/internal/hist"
	"streamd/netpoll"
)

// Metric levels (Config.Metrics).
const (
	MetricsFull    = "full"    // stage latency histograms (a few clock reads per message)
	MetricsMinimal = "minimal" // counters only
)

// Stages of the latency histograms.
const (
	StageIngress = "ingress" // frame read → handed on (decode, routing)
	StageRing    = "ring"    // loop → shard (ModeRings only)
	StageFanout  = "fanout"  // shard publish → receiving loop delivers
	StageWrite   = "write"   // first frame of a batch queued → its socket writes done (per flush)
	StageE2E     = "e2e"     // frame read → delivery queued on the receiving loop
)

// Stages lists the stages in path order.
var Stages = []string{StageIngress, StageRing, StageFanout, StageWrite, StageE2E}

// loopMetrics are a loop's own figures (loop-written, read anywhere).
type loopMetrics struct {
	ingress, fanout, e2e hist.H
	members              int64Gauge
	errCodes             [len(errorCodes)]uint64Counter
	forbidden            [nActions]uint64Counter     // denials by action (permissions.go)
	authFail             [nAuthReasons]uint64Counter // refused or closed authentications by reason (auth.go)
}

// shardMetrics are a shard's own figures.
type shardMetrics struct {
	ring hist.H
}

// errorCodes are the codes counted one by one; any other is "other".
var errorCodes = [...]string{
	"bad_json", "bad_msgpack", "missing_type", "unknown_type", "bad_field",
	CodeMissingRoom, CodeRoomTooLong, CodeInvalidRoom, CodeNotJoined, CodeTooManyRooms,
	CodeUnknownStream, CodeMissingStream, CodePresenceOff, CodeInvalidUserID, CodeInfoTooLarge, CodeForbidden,
	CodeRateLimited, CodeNotDurable, CodeUnauthenticated, CodeTokenExpired, CodeOverloaded,
	"other",
}

func errorCodeIndex(code string) int {
	for i, c := range errorCodes {
		if c == code {
			return i
		}
	}
	return len(errorCodes) - 1
}

// now reads the monotonic clock (netpoll.MonoNow, the clock of every
// latency stamp) when the engine measures latency, else 0.
func (e *Engine) now() int64 {
	if e.full {
		return netpoll.MonoNow()
	}
	return 0
}

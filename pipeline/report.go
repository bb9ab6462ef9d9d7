package pipeline

import (
	"log/slog"
	"time"

	"streamd/operators"
)

// errorLogEvery is how often a node logs its failing events at most.
const errorLogEvery = 10 * time.Second

// reporter counts a node's failed events in its stats and logs them, at
// most once per errorLogEvery with the count since the last line, so an
// expression that fails on every event neither floods the log nor fails
// silently. Flow goroutine only (except the webhook's, which has its own).
type reporter struct {
	log        *slog.Logger
	pipeline   string
	node       string
	stats      func() *operators.Stats
	last       time.Time
	suppressed int
}

func (c *BuildContext) reporter(stats func() *operators.Stats) *reporter {
	return &reporter{log: c.Opts.Logger, pipeline: c.Spec.Name, node: c.Node.Name, stats: stats}
}

// fail counts one failed event and maybe logs it.
func (r *reporter) fail(err error, what string) {
	if s := r.stats(); s != nil {
		s.Errors(1)
	}
	r.note(err, what)
}

// note logs without counting (the operator counted it already).
func (r *reporter) note(err error, what string) {
	now := time.Now()
	if now.Sub(r.last) < errorLogEvery {
		r.suppressed++
		return
	}
	r.log.Warn("pipeline: event failed", "pipeline", r.pipeline, "node", r.node, "what", what,
		"err", err, "more_since_last_log", r.suppressed)
	r.last, r.suppressed = now, 0
}

package alerts

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Severities (Rule.Severity, Event.Severity).
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// States (Event.State).
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Rule is one alert rule, as the config declares it (the engine's config
// decides where the list lives):
//
//	rules:
//	  - name: e2e_latency
//	    metric: latency.e2e.p99
//	    op: ">"
//	    threshold: 250
//	    clear: 200
//	    for: 30s
//	    severity: critical
//	    message: end-to-end p99 latency above 250ms
//	    action: look for slow consumers (drops.slow_consumer) and hot rooms
//
// The doc of this package says how a rule fires and resolves. Rules are
// values: the Evaluator keeps its own copy, and nothing here changes one.
type Rule struct {
	// Name identifies the rule in events and logs. Required; unique among
	// the rules of one Evaluator.
	Name string `yaml:"name" json:"name"`
	// Metric is the dotted metric name the rule watches, as
	// engine.MetricsSnapshot.Flatten names it: "latency.e2e.p99" (ms),
	// "messages.in_per_s", "connections.open", "drops.slow_consumer",
	// "pipeline.NAME.NODE.p99_ms", … Required.
	Metric string `yaml:"metric" json:"metric"`
	// Op compares the metric's value (left) with Threshold (right): one of
	// ">", ">=", "<", "<=", "==", "!=". Required.
	Op string `yaml:"op" json:"op"`
	// Threshold is the right-hand side of the condition.
	Threshold float64 `yaml:"threshold" json:"threshold"`
	// For is how long the condition must hold, at every evaluation, before
	// the alert fires. Default 0: it fires on the first evaluation that
	// matches.
	For time.Duration `yaml:"for" json:"for"`
	// ResolveAfter is how long a firing alert's condition must stay false,
	// at every evaluation, before the alert resolves. Default 0, which
	// means For. The evaluation period (1s in the engine) is the smallest
	// useful value other than 0.
	ResolveAfter time.Duration `yaml:"resolve_after" json:"resolve_after"`
	// Clear, when set, is the threshold a firing alert must cross back
	// over to resolve: with op ">" threshold 10 clear 8, the alert fires
	// above 10 and stays firing until the value is at or below 8 (the
	// condition "value > 8" is false). It must lie on the resolving side
	// of Threshold (≤ it for > and >=, ≥ it for < and <=) and cannot be
	// used with == or !=. Default nil: Threshold.
	Clear *float64 `yaml:"clear,omitempty" json:"clear,omitempty"`
	// Severity is "info", "warning" or "critical". Default "warning".
	Severity string `yaml:"severity" json:"severity"`
	// Message says what is wrong, for people.
	Message string `yaml:"message" json:"message"`
	// Action suggests what to do about it.
	Action string `yaml:"action" json:"action"`
}

// Validate reports every setting of r that cannot work, each error naming
// the rule and the setting. The zero values of the optional fields are
// valid (they mean their defaults).
func (r *Rule) Validate() error {
	return errors.Join(r.validate(fmt.Sprintf("rule %q", r.Name))...)
}

// validate returns r's problems, each prefixed "alerts: LABEL: ".
func (r *Rule) validate(label string) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts: "+label+": "+format, args...))
	}
	if r.Name == "" {
		bad("name is empty: every rule needs a unique name")
	}
	if r.Metric == "" {
		bad("metric is empty: want a dotted metric name such as latency.e2e.p99")
	}
	if !validOp(r.Op) {
		bad("op %q: want one of >, >=, <, <=, ==, !=", r.Op)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold = %v: want a finite number", r.Threshold)
	}
	if r.For < 0 {
		bad("for = %v: want ≥ 0 (0 fires on the first matching evaluation)", r.For)
	}
	if r.ResolveAfter < 0 {
		bad("resolve_after = %v: want ≥ 0 (0 means the same as for)", r.ResolveAfter)
	}
	switch r.Severity {
	case "", SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		bad("severity %q: want info, warning or critical", r.Severity)
	}
	if r.Clear != nil {
		c := *r.Clear
		switch {
		case math.IsNaN(c) || math.IsInf(c, 0):
			bad("clear = %v: want a finite number", c)
		case r.Op == "==" || r.Op == "!=":
			bad("clear is set but op %s has no side to clear to: remove clear", r.Op)
		case (r.Op == ">" || r.Op == ">=") && c > r.Threshold:
			bad("clear = %v is above threshold = %v: with op %s the alert clears below its threshold (e.g. threshold 10, clear 8)", c, r.Threshold, r.Op)
		case (r.Op == "<" || r.Op == "<=") && c < r.Threshold:
			bad("clear = %v is below threshold = %v: with op %s the alert clears above its threshold (e.g. threshold 8, clear 10)", c, r.Threshold, r.Op)
		}
	}
	return errs
}

// withDefaults returns r with its defaults filled in and Clear copied, so
// that the copy shares no memory with r.
func (r Rule) withDefaults() Rule {
	if r.Severity == "" {
		r.Severity = SeverityWarning
	}
	if r.ResolveAfter == 0 {
		r.ResolveAfter = r.For
	}
	if r.Clear != nil {
		r.Clear = new(*r.Clear)
	}
	return r
}

// String returns the rule's condition, such as "latency.e2e.p99 > 250 for 30s".
func (r *Rule) String() string {
	s := fmt.Sprintf("%s %s %v", r.Metric, r.Op, r.Threshold)
	if r.For > 0 {
		s += " for " + r.For.String()
	}
	if r.Clear != nil {
		s += fmt.Sprintf(" (clear %v)", *r.Clear)
	}
	return s
}

func validOp(op string) bool {
	switch op {
	case ">", ">=", "<", "<=", "==", "!=":
		return true
	}
	return false
}

// compare reports whether "v op t" holds. A NaN value never matches, not
// even with "!=".
func compare(op string, v, t float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch op {
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "<":
		return v < t
	case "<=":
		return v <= t
	case "==":
		return v == t
	case "!=":
		return v != t
	}
	return false
}

package alerts

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"

	"streamd/operators"
)

// Event is an alert's change of state, as notifiers receive it, as the
// engine publishes it to the room "$sys.alerts" and as webhooks POST it
// (JSON). Firing also returns the alerts that fire now as Events.
type Event struct {
	Rule     string `json:"rule"`
	State    string `json:"state"` // StateFiring or StateResolved
	Severity string `json:"severity"`
	Metric   string `json:"metric"`
	Op       string `json:"op"`
	// Value is the metric's value at At. When the metric was not reported
	// at At (or was NaN), it is the last value seen (0 if none). ±Inf is
	// reported as ±math.MaxFloat64, so an Event always encodes as JSON.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Clear is the rule's clear threshold, nil when it has none.
	Clear   *float64 `json:"clear,omitempty"`
	Message string   `json:"message,omitempty"`
	Action  string   `json:"action,omitempty"`
	// At is when this happened (Unix ms): the evaluation that fired or
	// resolved the alert; in Firing's answer, the latest evaluation.
	At int64 `json:"at"`
	// Since is when the alert started firing (Unix ms); on a resolved
	// event, At−Since is how long it fired.
	Since int64 `json:"since"`
}

// Options configure an Evaluator. Every field is optional.
type Options struct {
	// Rules are the alert rules, evaluated in this order. New checks each
	// with Rule.Validate and that no two share a name. Default none (Eval
	// then does nothing).
	Rules []Rule
	// Clock is the time source. Default operators.SystemClock{}.
	Clock operators.Clock
	// Notifiers receive every firing and resolved Event, each in the order
	// given, on the goroutine that calls Eval, after Eval has released its
	// lock. A notifier must not block (Webhook queues); it may call
	// Firing. Default none.
	Notifiers []Notifier
	// Logger receives the evaluator's own warnings: a rule whose metric is
	// not reported. Default slog.Default().
	Logger *slog.Logger
}

// Evaluator evaluates alert rules against metric snapshots and notifies
// when an alert fires or resolves.
//
// Eval must be called from one goroutine at a time (the engine's
// once-a-second ticker); Firing and Rules are safe from any goroutine.
type Evaluator struct {
	clock     operators.Clock
	notifiers []Notifier
	log       *slog.Logger

	// mu guards the ruleState fields marked "mu": Eval writes them while
	// holding it, Firing reads them while holding it. Eval never calls a
	// notifier or the logger while holding it.
	mu    sync.Mutex
	rules []ruleState

	events []Event // Eval's scratch: the events of one evaluation
}

// ruleState is one rule and where its alert stands. Fields not marked "mu"
// are read and written only by Eval.
type ruleState struct {
	rule  Rule    // defaults applied; never changes after New
	clear float64 // the threshold that keeps a firing alert firing: *rule.Clear or rule.Threshold

	matching     bool  // not firing: the condition held at every evaluation since pendingSince
	pendingSince int64 // Unix ns
	clearing     bool  // firing: the clear condition held at every evaluation since clearSince
	clearSince   int64 // Unix ns
	missing      bool  // the metric was not reported at the last evaluation (and that was logged)

	firing  bool    // mu
	firedAt int64   // mu; Unix ns
	value   float64 // mu; the last value seen, 0 before any
	at      int64   // mu; Unix ns of the last evaluation
}

// New returns an Evaluator of opts.Rules, or an error naming every rule
// setting that cannot work.
func New(opts Options) (*Evaluator, error) {
	var errs []error
	byName := make(map[string]int, len(opts.Rules))
	for i := range opts.Rules {
		r := &opts.Rules[i]
		label := fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			label = fmt.Sprintf("rules[%d]", i)
		} else if j, dup := byName[r.Name]; dup {
			errs = append(errs, fmt.Errorf("alerts: rules[%d]: name %q is also the name of rules[%d]: rule names must be unique", i, r.Name, j))
		} else {
			byName[r.Name] = i
		}
		errs = append(errs, r.validate(label)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &Evaluator{
		clock:     opts.Clock,
		notifiers: append([]Notifier(nil), opts.Notifiers...),
		log:       opts.Logger,
		rules:     make([]ruleState, len(opts.Rules)),
	}
	if e.clock == nil {
		e.clock = operators.SystemClock{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	for i := range opts.Rules {
		s := &e.rules[i]
		s.rule = opts.Rules[i].withDefaults()
		s.clear = s.rule.Threshold
		if s.rule.Clear != nil {
			s.clear = *s.rule.Clear
		}
	}
	return e, nil
}

// Eval evaluates every rule against values (metric name → value, as
// engine.MetricsSnapshot.Flatten returns) at the clock's current time, and
// notifies the alerts that fire or resolve, in rule order. A metric
// missing from values counts as the condition not holding; the first
// evaluation that misses it logs a warning, naming close metric names,
// and so does the first one after it has been reported again.
//
// Eval must not be called from two goroutines at once. It does not keep
// values.
func (e *Evaluator) Eval(values map[string]float64) {
	now := e.clock.Now()
	for i := range e.rules {
		s := &e.rules[i]
		_, ok := values[s.rule.Metric]
		if !ok && !s.missing {
			e.log.Warn("alerts: metric not reported; the rule does not match until it is",
				"rule", s.rule.Name, "metric", s.rule.Metric, "close_names", strings.Join(closeNames(s.rule.Metric, values, 3), ", "))
		}
		s.missing = !ok
	}
	events := e.events[:0]
	e.mu.Lock()
	for i := range e.rules {
		s := &e.rules[i]
		v, ok := values[s.rule.Metric]
		if s.step(now, v, ok) {
			events = append(events, s.event(now))
		}
	}
	e.mu.Unlock()
	for i := range events {
		for _, n := range e.notifiers {
			n.Notify(events[i])
		}
	}
	clear(events)
	e.events = events[:0]
}

// step moves s to time now with the metric at v (ok: reported) and reports
// whether the alert fired or resolved. Called with e.mu held.
func (s *ruleState) step(now int64, v float64, ok bool) (changed bool) {
	s.at = now
	if ok && !math.IsNaN(v) {
		s.value = v
	}
	r := &s.rule
	if !s.firing {
		if !ok || !compare(r.Op, v, r.Threshold) {
			s.matching = false
			return false
		}
		if !s.matching {
			s.matching, s.pendingSince = true, now
		}
		if now-s.pendingSince < int64(r.For) {
			return false
		}
		s.firing, s.firedAt, s.matching = true, now, false
		return true
	}
	if ok && compare(r.Op, v, s.clear) {
		s.clearing = false
		return false
	}
	if !s.clearing {
		s.clearing, s.clearSince = true, now
	}
	if now-s.clearSince < int64(r.ResolveAfter) {
		return false
	}
	s.firing, s.clearing = false, false
	return true
}

// event returns s as an Event at now: firing if s.firing, else resolved.
// Called with e.mu held.
func (s *ruleState) event(now int64) Event {
	r := &s.rule
	ev := Event{
		Rule:      r.Name,
		State:     StateResolved,
		Severity:  r.Severity,
		Metric:    r.Metric,
		Op:        r.Op,
		Value:     finite(s.value),
		Threshold: r.Threshold,
		Message:   r.Message,
		Action:    r.Action,
		At:        unixMilli(now),
		Since:     unixMilli(s.firedAt),
	}
	if s.firing {
		ev.State = StateFiring
	}
	if r.Clear != nil {
		ev.Clear = new(*r.Clear)
	}
	return ev
}

// Firing returns the alerts that fire now, in rule order, each as an Event
// whose Value and At are those of the latest evaluation. The slice is the
// caller's. Safe from any goroutine.
func (e *Evaluator) Firing() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for i := range e.rules {
		if s := &e.rules[i]; s.firing {
			out = append(out, s.event(s.at))
		}
	}
	return out
}

// Rules returns the rules with their defaults filled in, in order. The
// slice and its rules are the caller's. Safe from any goroutine.
func (e *Evaluator) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i := range e.rules {
		out[i] = e.rules[i].rule.withDefaults() // copies Clear
	}
	return out
}

func unixMilli(ns int64) int64 { return ns / 1e6 }

// finite maps ±Inf to ±math.MaxFloat64, which JSON can encode.
func finite(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

// closeNames returns up to n names of values close to name (by edit
// distance), closest first, for the "metric not reported" warning.
func closeNames(name string, values map[string]float64, n int) []string {
	limit := max(2, len(name)/4)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for k := range values {
		if d := editDistance(name, k, limit); d <= limit {
			cs = append(cs, cand{k, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	out := make([]string, 0, min(n, len(cs)))
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b in bytes, or
// limit+1 when it is certainly above limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

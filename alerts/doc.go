// Package alerts evaluates the alert rules of the config against the
// engine's metrics and notifies when an alert fires or resolves.
//
// It owns the rules (Rule), their evaluation (Evaluator) and the ways out
// (Notifier: LogNotifier, Webhook, or any NotifierFunc, such as the
// engine's publisher to the room "$sys.alerts"). It imports nothing of
// streamd but operators.Clock: the engine calls it, not the other way
// round, and hands it the flattened snapshot (engine.MetricsSnapshot.Flatten)
// whose dotted names the rules use.
//
// # Who calls what
//
// One goroutine (the engine's once-a-second ticker) calls Evaluator.Eval;
// Eval is not safe to call from two goroutines at once. Notifiers are
// called on that goroutine, after Eval has released its lock, and must not
// block. Firing and Rules are safe from any goroutine (the admin port, the
// snapshot builder). Webhook.Notify, Stats and Close are safe from any
// goroutine.
//
// # How an alert fires and resolves
//
// Each rule's alert is either firing or not. Time is the evaluator's Clock
// at each Eval; nothing happens between evaluations.
//
//   - Not firing: the condition is "value Op Threshold". The first
//     evaluation at which it holds starts a wait; the alert fires at the
//     first evaluation at which it has held at every evaluation for at
//     least For. An evaluation at which it does not hold ends the wait, and
//     the next match starts it again from zero. With For = 0 the alert
//     fires on the first matching evaluation.
//   - Firing: the condition that keeps it firing is "value Op Clear" (Clear
//     defaults to Threshold). The first evaluation at which that does not
//     hold starts a wait; the alert resolves at the first evaluation at
//     which it has not held at every evaluation for at least ResolveAfter
//     (default For). An evaluation at which it holds again ends the wait.
//
// These are the two hystereses. In time: a value that wanders around the
// threshold fires only after For of continuous matching and resolves only
// after ResolveAfter of continuous non-matching, so it cannot flap faster
// than that. In value: with op ">" threshold 10 clear 8, the alert fires
// above 10 and stays firing while the value is above 8, so a value
// between 8 and 10 neither fires nor resolves it.
//
// A metric absent from Eval's values makes its rule's condition false
// (pending waits end; a firing alert starts or continues to resolve) and is
// logged at Warn on the first evaluation that misses it (and again
// after it has been reported), with reported names close to it, in case
// of a typo. Note that map-based families of
// the snapshot, such as drops.* and errors.*, appear only once something
// was counted. A NaN value matches no Op, not even "!=".
//
// # Events
//
// Each firing or resolution is one Event, notified to every Notifier in
// order: rule name, state, severity, metric, op, value, threshold, clear,
// message, action, At (Unix ms) and Since (when it started firing, Unix
// ms). It is what the engine publishes to "$sys.alerts" and what a Webhook
// POSTs, as JSON. Firing returns the alerts that fire now in the same form,
// with the latest value.
//
// # Webhooks
//
// A Webhook queues events (bounded: when full, events are dropped and
// counted) and POSTs them one by one from its own goroutine, retrying
// network errors, timeouts, 5xx and 429 with exponential backoff; other
// statuses are not retried. Close stops taking events, gives the queue
// FlushTimeout to drain, then aborts the rest.
package alerts

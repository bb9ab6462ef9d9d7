package alerts

import (
	"context"
	"log/slog"
	"time"
)

// Notifier receives the alerts that fire or resolve. Notify is called on
// the goroutine that calls Evaluator.Eval, one event at a time, in order;
// it must not block (queue the work, as Webhook does). A notifier may keep
// ev; it must not write through ev.Clear, which the other notifiers share.
type Notifier interface {
	Notify(ev Event)
}

// NotifierFunc is a function used as a Notifier.
type NotifierFunc func(ev Event)

// Notify calls f(ev).
func (f NotifierFunc) Notify(ev Event) { f(ev) }

// LogNotifier returns a Notifier that logs each event to log (default
// slog.Default()): a firing alert at Error if its severity is critical,
// Warn if warning, Info if info; a resolved one at Info.
func LogNotifier(log *slog.Logger) Notifier {
	if log == nil {
		log = slog.Default()
	}
	return NotifierFunc(func(ev Event) {
		level, msg := slog.LevelInfo, "alerts: resolved"
		if ev.State == StateFiring {
			msg = "alerts: firing"
			switch ev.Severity {
			case SeverityCritical:
				level = slog.LevelError
			case SeverityWarning:
				level = slog.LevelWarn
			}
		}
		ctx := context.Background()
		if !log.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("rule", ev.Rule),
			slog.String("severity", ev.Severity),
			slog.String("metric", ev.Metric),
			slog.String("op", ev.Op),
			slog.Float64("threshold", ev.Threshold),
			slog.Float64("value", ev.Value),
		}
		if ev.Clear != nil {
			attrs = append(attrs, slog.Float64("clear", *ev.Clear))
		}
		if ev.State == StateResolved {
			attrs = append(attrs, slog.Duration("fired_for", time.Duration(ev.At-ev.Since)*time.Millisecond))
		}
		if ev.Message != "" {
			attrs = append(attrs, slog.String("message", ev.Message))
		}
		if ev.Action != "" {
			attrs = append(attrs, slog.String("action", ev.Action))
		}
		log.LogAttrs(ctx, level, msg, attrs...)
	})
}

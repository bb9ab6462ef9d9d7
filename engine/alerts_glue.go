package engine

import (
	"encoding/json"
	"errors"
	"fmt"

	"streamd/alerts"
)

// startAlerts builds the alert evaluator of Config.Alerts: notifications
// go to the log, to each of Config.AlertWebhooks, and into RoomAlerts.
func (e *Engine) startAlerts() error {
	if len(e.cfg.Alerts) == 0 {
		return nil
	}
	notifiers := []alerts.Notifier{alerts.LogNotifier(e.cfg.Logger), alerts.NotifierFunc(func(ev alerts.Event) {
		if b, err := json.Marshal(ev); err == nil {
			e.publishSystem(RoomAlerts, b)
		}
	})}
	for _, o := range e.cfg.AlertWebhooks {
		o.Logger = e.cfg.Logger
		w, err := alerts.NewWebhook(o)
		if err != nil {
			e.closeAlerts()
			return fmt.Errorf("engine: alert_webhooks: %w", err)
		}
		e.alertHooks = append(e.alertHooks, w)
		notifiers = append(notifiers, w)
	}
	ev, err := alerts.New(alerts.Options{Rules: e.cfg.Alerts, Notifiers: notifiers, Logger: e.cfg.Logger})
	if err != nil {
		e.closeAlerts()
		return err
	}
	e.alerter = ev
	return nil
}

func (e *Engine) closeAlerts() {
	for _, w := range e.alertHooks {
		_ = w.Close()
	}
	e.alertHooks = nil
}

// evalAlerts runs the alert rules on a snapshot and records the firing
// ones in it. Metrics goroutine only.
func (e *Engine) evalAlerts(snap *MetricsSnapshot) {
	if e.alerter == nil {
		return
	}
	e.alerter.Eval(snap.Flatten())
	for _, a := range e.alerter.Firing() {
		snap.Alerts = append(snap.Alerts, AlertState{Name: a.Rule, Severity: a.Severity, Since: a.Since,
			Value: a.Value, Message: a.Message, Action: a.Action})
	}
}

// validateAlerts checks the alert rules and webhooks of a config.
func (c *Config) validateAlerts() error {
	var errs []error
	seen := map[string]bool{}
	for i := range c.Alerts {
		r := c.Alerts[i]
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("engine: alerts[%d]: %w", i, err))
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("engine: alerts[%d]: two rules are called %q", i, r.Name))
		}
		seen[r.Name] = true
	}
	if len(c.Alerts) > 0 && c.MetricsInterval < 0 {
		errs = append(errs, errors.New("engine: alerts need metrics snapshots: metrics_interval is negative"))
	}
	for i := range c.AlertWebhooks {
		if err := c.AlertWebhooks[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("engine: alert_webhooks[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

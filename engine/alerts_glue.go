package engine

// evalAlerts runs the alert rules on a snapshot (wired when the alerts
// package lands).
func (e *Engine) evalAlerts(snap *MetricsSnapshot) {}

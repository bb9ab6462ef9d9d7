package alerts

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogNotifier(t *testing.T) {
	var buf bytes.Buffer
	n := LogNotifier(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})))
	base := Event{Rule: "lat", Metric: "latency.e2e.p99", Op: ">", Threshold: 250, Value: 300,
		Message: "p99 high", Action: "check consumers", At: at(0), Since: at(0)}
	for _, sev := range []string{SeverityCritical, SeverityWarning, SeverityInfo} {
		ev := base
		ev.State, ev.Severity = StateFiring, sev
		n.Notify(ev)
	}
	ev := base
	ev.State, ev.Severity, ev.Value, ev.At, ev.Clear = StateResolved, SeverityCritical, 180, at(90), new(200.0)
	n.Notify(ev)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=ERROR msg="alerts: firing" rule=lat severity=critical metric=latency.e2e.p99 op=> threshold=250 value=300 message="p99 high" action="check consumers"`,
		`level=WARN msg="alerts: firing" rule=lat severity=warning`,
		`level=INFO msg="alerts: firing" rule=lat severity=info`,
		`level=INFO msg="alerts: resolved" rule=lat severity=critical metric=latency.e2e.p99 op=> threshold=250 value=180 clear=200 fired_for=1m30s message="p99 high"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s…", i, lines[i], want[i])
		}
	}

	// Below the handler's level, nothing is built or written.
	buf.Reset()
	quiet := LogNotifier(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ev.State = StateResolved
	quiet.Notify(ev)
	if buf.Len() != 0 {
		t.Errorf("resolved logged at Warn level: %s", buf.String())
	}
}

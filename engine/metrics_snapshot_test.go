package engine

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"streamd/alerts"
)

func TestMetricsSnapshotPublishedAndFilled(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		e := startEngine(t, func(c *Config) { mutate(c); c.MetricsInterval = 100 * time.Millisecond })
		got := make(chan []byte, 64)
		stop, err := e.Subscribe(RoomMetrics, func(m *Message) {
			select {
			case got <- append([]byte(nil), m.Data()...):
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		a := dial(t, e, false)
		a.send(map[string]any{"type": "join", "room": "r"})
		a.expect("joined")
		for i := 0; i < 50; i++ {
			a.send(map[string]any{"type": "publish", "room": "r", "data": i})
			a.expect("message")
		}
		a.send(map[string]any{"type": "bogus"})
		a.expect("error")
		deadline := time.Now().Add(5 * time.Second)
		for {
			var snap MetricsSnapshot
			select {
			case b := <-got:
				if err := json.Unmarshal(b, &snap); err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Until(deadline)):
				t.Fatal("no complete snapshot in 5s")
			}
			e2e := snap.Latency[StageE2E]
			if snap.Messages.InTotal >= 52 && snap.Messages.OutTotal >= 50 && e2e.Count >= 50 && snap.Connections.Open == 1 &&
				snap.Members == 1 && snap.Errors["unknown_type"] == 1 && snap.Bytes.InTotal > 0 && snap.Bytes.OutTotal > 0 &&
				snap.Latency[StageIngress].Count >= 52 && snap.Latency[StageWrite].Count > 0 && snap.Runtime.Goroutines > 0 {
				if mode := e.Config().Mode; mode == ModeRings && (snap.Latency[StageRing].Count == 0 || snap.Latency[StageFanout].Count == 0) {
					continue
				}
				if e2e.P50 <= 0 || e2e.P99 < e2e.P50 || e2e.Max < e2e.P99 {
					t.Fatalf("e2e %+v", e2e)
				}
				f := snap.Flatten()
				if f["latency.e2e.p99"] != e2e.P99 || f["errors.unknown_type"] != 1 || f["connections.open"] != 1 {
					t.Fatalf("flatten %v", f)
				}
				if e.Metrics() == nil {
					t.Fatal("Metrics() is nil")
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("snapshot never complete: %+v", snap)
			}
		}
	})
}

func TestMetricsMinimalHasNoLatency(t *testing.T) {
	e := startEngine(t, func(c *Config) { c.Metrics = MetricsMinimal; c.MetricsInterval = 50 * time.Millisecond })
	a := dial(t, e, false)
	a.send(map[string]any{"type": "join", "room": "r"})
	a.expect("joined")
	a.send(map[string]any{"type": "publish", "room": "r", "data": 1})
	a.expect("message")
	time.Sleep(200 * time.Millisecond)
	snap := e.Metrics()
	if snap == nil || snap.Messages.InTotal < 2 || len(snap.Latency) != 0 {
		t.Fatalf("%+v", snap)
	}
}

func TestAlertRuleFiresIntoSysAlertsAndSnapshot(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		c.MetricsInterval = 50 * time.Millisecond
		c.Alerts = []alerts.Rule{{Name: "busy", Metric: "messages.in_per_s", Op: ">", Threshold: 20, Severity: "critical",
			Message: "too many messages", Action: "scale up"}}
	})
	got := make(chan []byte, 16)
	stop, _ := e.Subscribe(RoomAlerts, func(m *Message) { got <- append([]byte(nil), m.Data()...) })
	defer stop()
	a := dial(t, e, false)
	a.send(map[string]any{"type": "join", "room": "r"})
	a.expect("joined")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			a.send(map[string]any{"type": "publish", "room": "r", "data": i})
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case b := <-got:
		var ev alerts.Event
		if err := json.Unmarshal(b, &ev); err != nil || ev.Rule != "busy" || ev.State != alerts.StateFiring || ev.Action != "scale up" {
			t.Fatalf("alert %s (%v)", b, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert fired")
	}
	if snap := e.Metrics(); snap == nil {
		t.Fatal("no snapshot")
	}
	<-done
	// load stops: it resolves
	select {
	case b := <-got:
		if !strings.Contains(string(b), `"state":"resolved"`) {
			t.Fatalf("second event %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the alert never resolved")
	}
}

// TestClientsCannotPublishIntoSystemRooms: only admins may join the
// $sys.* rooms, and nobody but the engine publishes into them.
func TestClientsCannotPublishIntoSystemRooms(t *testing.T) {
	e := startEngine(t, nil)
	anon := dial(t, e, false)
	anon.send(map[string]any{"type": "join", "room": RoomMetrics})
	if m := anon.expect("error"); m["code"] != CodeForbidden || m["room"] != RoomMetrics {
		t.Fatalf("anonymous join: %v", m)
	}
	ticket, err := e.AdminTicket("ops", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a := dialToken(t, e, ticket)
	a.send(map[string]any{"type": "join", "room": RoomMetrics})
	a.expect("joined")
	a.send(map[string]any{"type": "publish", "room": RoomMetrics, "id": 1, "data": "fake"})
	if m := a.expect("error"); m["code"] != CodeForbidden || num(m["id"]) != 1 {
		t.Fatalf("%v", m)
	}
}

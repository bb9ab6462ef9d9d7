package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// TestMetricsParseWithTheTextParser: /metrics is valid Prometheus text
// (the parser Prometheus itself uses) and carries the per-stage latency
// histograms with samples in them.
func TestMetricsParseWithTheTextParser(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{Mode: engine.ModeRings, Loops: 1, Workers: 1})
	a := &adminServer{}
	srv := httptest.NewServer(a.mux(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial(enginetest.URL(eng), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, _, _ = ws.ReadMessage() // welcome
	_ = ws.WriteJSON(map[string]any{"type": "join", "room": "r"})
	_, _, _ = ws.ReadMessage()
	for i := 0; i < 20; i++ {
		_ = ws.WriteJSON(map[string]any{"type": "publish", "room": "r", "data": i})
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	_ = ws.WriteJSON(map[string]any{"type": "nope"})
	_, _, _ = ws.ReadMessage()
	time.Sleep(50 * time.Millisecond) // the last flush's write stage
	code, body := httpGet(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	h := fams["streamd_stage_latency_seconds"]
	if h == nil || h.GetType().String() != "HISTOGRAM" {
		t.Fatalf("no stage histogram family: %v", h)
	}
	stages := map[string]uint64{}
	for _, m := range h.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "stage" {
				stages[l.GetValue()] = m.GetHistogram().GetSampleCount()
				if len(m.GetHistogram().GetBucket()) < 10 {
					t.Errorf("stage %s has %d buckets", l.GetValue(), len(m.GetHistogram().GetBucket()))
				}
			}
		}
	}
	for _, st := range engine.Stages {
		if stages[st] == 0 {
			t.Errorf("stage %s: no samples (%v)", st, stages)
		}
	}
	if f := fams["streamd_errors_by_code_total"]; f == nil || !strings.Contains(f.String(), "unknown_type") {
		t.Errorf("errors by code: %v", f)
	}
	for _, name := range []string{"streamd_bytes_received_total", "streamd_bytes_sent_total", "streamd_members", "streamd_connections_closed_total", "streamd_ring_fill_ratio", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestTopOnce: `streamd top --once` against a running serve prints the view.
func TestTopOnce(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{MetricsInterval: 50 * time.Millisecond})
	a := &adminServer{}
	srv := httptest.NewServer(a.mux(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	time.Sleep(150 * time.Millisecond)
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, out, errOut := runCLI(t, "top", "--admin", addr, "--once")
	if code != 0 || !strings.Contains(out, "connections") || !strings.Contains(out, "messages") || !strings.Contains(out, "alerts: none firing") {
		t.Fatalf("code %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "top", "--admin", "127.0.0.1:1", "--once"); code != exitFail || !strings.Contains(errOut, "is streamd running") {
		t.Fatalf("top against nothing: %d %s", code, errOut)
	}
}

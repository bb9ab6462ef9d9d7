package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// adminFor serves what streamd's admin port serves for the counters the
// generator reads: /stats (the engine's Stats as JSON) and /metrics.
func adminFor(t *testing.T, e *engine.Engine) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(e.Stats())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /stats/metrics", func(w http.ResponseWriter, _ *http.Request) {
		snap := e.Metrics()
		if snap == nil {
			http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(snap)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestSeqAccounting(t *testing.T) {
	a := &seqAcct{base: 10, covered: 10}
	a.message(11)
	a.gap(12, 15)
	a.message(16)
	a.message(16) // twice
	a.message(18) // 17 skipped, no notice
	a.gap(19, 19)
	if a.delivered != 3 || a.gapped != 5 || a.gapNotices != 2 || a.dups != 1 || a.unannounced != 1 || a.misplaced != 0 || a.covered != 19 {
		t.Fatalf("%+v", *a)
	}
	if a.complete(9) {
		t.Fatal("an account with a duplicate and a skipped seq is complete")
	}
	b := &seqAcct{}
	for _, f := range []string{
		`{"type":"message","room":"r","seq":1,"data":{}}`,
		`{"type":"gap","room":"r","from":2,"to":4}`,
		`{"type":"message","room":"r","seq":5,"data":{"seq":99}}`,
		`{"type":"joined","room":"r","seq":0}`,
	} {
		b.frame([]byte(f))
	}
	if !b.complete(5) || b.delivered != 2 || b.gapped != 3 {
		t.Fatalf("%+v", *b)
	}
	c := &seqAcct{covered: 5}
	c.gap(4, 7) // overlaps 4..5, which were covered
	if c.dups != 2 || c.misplaced != 1 || c.gapped != 2 || c.covered != 7 {
		t.Fatalf("overlapping gap: %+v", *c)
	}
}

func TestRSSSlope(t *testing.T) {
	var s []RSSSample
	for i := -3; i <= 60; i++ { // 10 MiB/min = 1/6 MiB/s, from 20 MiB
		s = append(s, RSSSample{T: float64(i), KiB: int64((20 + float64(i)/6) * 1024)})
	}
	sum := summarizeRSS(s, 60, 50)
	if math.Abs(sum.SlopeMiBPerMin-10) > 0.05 || sum.FitSamples != 51 || math.Abs(sum.StartMiB-20) > 0.01 || sum.MaxMiB < 29.9 {
		t.Fatalf("%+v", sum)
	}
	// minute 0 is t −3…56 (60 samples, mean at t 26.5), the rest (t 57…60) is not a whole minute
	if len(sum.ByMinuteMiB) != 1 || math.Abs(sum.ByMinuteMiB[0]-(20+26.5/6)) > 0.01 {
		t.Fatalf("by minute: %v", sum.ByMinuteMiB)
	}
	var flat []RSSSample
	for i, k := range []int64{1000, 1100, 1000, 1100, 1000} {
		flat = append(flat, RSSSample{T: float64(i), KiB: k, HeapKiB: 2048 - int64(i)*100})
	}
	if sum := summarizeRSS(flat, 4, 50); math.Abs(sum.SlopeMiBPerMin) > 1 || sum.FitRMSMiB == 0 || sum.HeapMaxMiB != 2 || sum.HeapFloorStartMiB != 1.90234375 || sum.HeapFloorEndMiB != 1.609375 {
		t.Fatalf("flat: %+v", sum)
	}
}

func TestPromCounter(t *testing.T) {
	text := "# TYPE streamd_errors_by_code_total counter\nstreamd_errors_by_code_total{code=\"forbidden\"} 3\nstreamd_errors_by_code_total{code=\"rate_limited\"} 1.2345678e+07\n"
	v, err := promCounter(bufio.NewScanner(strings.NewReader(text)), `streamd_errors_by_code_total{code="rate_limited"}`)
	if err != nil || v != 12345678 {
		t.Fatalf("%d %v", v, err)
	}
	if v, _ := promCounter(bufio.NewScanner(strings.NewReader("")), "x"); v != 0 {
		t.Fatal(v)
	}
	if err := checkLoopback("--admin", "10.1.2.3:9090"); err == nil {
		t.Fatal("a non-loopback admin address was accepted")
	}
}

// TestBenchConfigs: the engine configs bench/backpressure.sh runs are
// valid engine configs.
func TestBenchConfigs(t *testing.T) {
	for _, name := range []string{"rate", "stall", "soak"} {
		src, err := os.ReadFile("../bench/backpressure-" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		var cfg engine.Config
		if err := yaml.Unmarshal(src, &cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestSoakCountsEveryPolicyDrop: fanout into a drop-oldest room with two
// subscribers that read slower than the publish rate: the fast ones get
// every seq, the slow ones every seq delivered or in a gap notice, and
// the engine's backpressure_dropped equals the gaps they counted.
func TestSoakCountsEveryPolicyDrop(t *testing.T) {
	e := enginetest.Start(t, engine.Config{SocketSendBuffer: 16 << 10,
		Rooms: []engine.RoomPolicy{{Match: "load.fanout", Backpressure: engine.BPDropOldest, LagBytes: 16 << 10, MaxPending: 50}}})
	res, err := Run(context.Background(), Options{Scenario: "fanout", Addr: e.Addr().String(), Subscribers: 12, Slow: 2, SlowRead: 8 << 10,
		Rate: 300, Size: 1000, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Drain: 10 * time.Second,
		Admin: adminFor(t, e), PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	q := res.Seqs
	if q == nil || q.Published < 600 || !q.Exact() || q.Slow.Gapped == 0 || q.Slow.Members != 2 || q.Fast.Members != 10 {
		t.Fatalf("seqs: %+v", q)
	}
	if q.DropsMatch == nil || !*q.DropsMatch {
		t.Fatalf("the engine's drops do not match: %+v (engine %+v)", q, res.Engine)
	}
	if res.Lost != 0 || res.Expected != res.Sent*10 {
		t.Fatalf("fast subscribers: %d of %d", res.Received, res.Expected)
	}
	if res.RSS == nil || len(res.ServerRSS) < 2 || res.RSS.HeapMaxMiB == 0 {
		t.Fatalf("no RSS samples: %+v", res.RSS)
	}
}

// TestFloodIsCountedExactly: a flooder next to echo clients; every
// message it sent was accepted or dropped by the rate limit, as the
// engine counts them.
func TestFloodIsCountedExactly(t *testing.T) {
	e := enginetest.Start(t, engine.Config{MaxMessagesPerSecond: 200, FlowControl: true})
	res, err := Run(context.Background(), Options{Scenario: "echo", Addr: e.Addr().String(), Conns: 10, Rate: 200, Flood: 1,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: time.Second, Admin: adminFor(t, e)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	f := res.Flood
	if f == nil || !f.Exact || f.Sent < 1000 || f.Accepted+f.RateLimited != f.Sent || f.LimitedAnswers == 0 || f.Pauses == 0 {
		t.Fatalf("flood: %+v", f)
	}
	// The bucket: 200 at the start, 200 a second after; the join took one.
	// What the flooder wrote last may wait in the kernel's buffers and be
	// read after the flood ended (on a loaded machine, hundreds of ms),
	// while the bucket refills: the engine may accept flooded messages
	// until the end marker, 1.1 s after the flood (flooder.finish).
	if limit := 200 + 200*(f.Seconds+1.1) + 1; f.Accepted < 200 || float64(f.Accepted) > limit {
		t.Fatalf("accepted %d in %.2f s of flood (+1.1 s to the end marker) against 200/s: at most %.0f", f.Accepted, f.Seconds, limit)
	}
	if res.Engine == nil || res.Engine.RateLimited != uint64(f.RateLimited) {
		t.Fatalf("the engine counted %+v rate_limited, the flooder %d", res.Engine, f.RateLimited)
	}
	if res.Lost != 0 || res.Received != res.Expected {
		t.Fatalf("echo clients: %d of %d", res.Received, res.Expected)
	}
}

// TestFairnessAlternates: without, with, …; medians and ratios.
func TestFairnessAlternates(t *testing.T) {
	e := enginetest.Start(t, engine.Config{MaxMessagesPerSecond: 500})
	dir := t.TempDir()
	res, err := Fairness(context.Background(), FairnessOptions{Base: Options{Addr: e.Addr().String(), Conns: 5, Rate: 100,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Drain: 500 * time.Millisecond}, Repeat: 1, Pause: 10 * time.Millisecond, OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Table())
	if len(res.Runs) != 2 || res.Runs[0].Server != "without" || res.Runs[0].Flood != nil || res.Runs[1].Server != "with" || res.Runs[1].Flood == nil {
		t.Fatalf("runs: %+v", res.Runs)
	}
	if res.Without.Runs != 1 || res.With.Runs != 1 || res.Ratio.P50ms <= 0 {
		t.Fatalf("medians: %+v %+v %+v", res.Without, res.With, res.Ratio)
	}
	for _, f := range []string{"without.1.json", "without.1.hgrm", "with.1.json", "with.1.hgrm"} {
		if _, err := os.Stat(dir + "/" + f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlowOnsets: a producer that honours flow control is paused soon
// after it crosses half its bucket, and resumed.
func TestFlowOnsets(t *testing.T) {
	e := enginetest.Start(t, engine.Config{MaxMessagesPerSecond: 400, FlowControl: true})
	res, err := Flow(context.Background(), FlowOptions{Addr: e.Addr().String(), Limit: 400, Onsets: 2, Idle: 1100 * time.Millisecond, Admin: adminFor(t, e)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	for i, on := range res.Onsets {
		// The crossing: the first k with k > 200 + 400·(t_k − t_1).
		if !on.Paused || !on.Resumed || on.Crossing < 201 || on.Crossing > 300 || on.Sent < on.Crossing || on.Accepted+on.Dropped != on.Sent {
			t.Fatalf("onset %d: %+v", i, on)
		}
		// Generous bounds: the race detector on a shared 2-core machine.
		if on.PauseMs < -5 || on.PauseMs > 500 || math.Abs(on.ResumeMs) > 500 {
			t.Fatalf("onset %d: pause %.3f ms after the crossing, resume %.3f ms off", i, on.PauseMs, on.ResumeMs)
		}
	}
	if res.Engine == nil || res.Engine.FlowPauses != 2 || res.Engine.RateLimited != uint64(res.Dropped) {
		t.Fatalf("engine: %+v, dropped %d", res.Engine, res.Dropped)
	}
}

// TestStallOnsets: a subscriber stops reading in a drop-oldest room: its
// first gap starts at the first message the policy held back, after the
// stop; every seq is accounted for, and the engine counted the same drops.
func TestStallOnsets(t *testing.T) {
	e := enginetest.Start(t, engine.Config{SocketSendBuffer: 16 << 10,
		Rooms: []engine.RoomPolicy{{Match: "load.stall.*", Backpressure: engine.BPDropOldest, LagBytes: 16 << 10, MaxPending: 50}}})
	res, err := Stall(context.Background(), StallOptions{Addr: e.Addr().String(), Rate: 1000, Size: 1000, Onsets: 2,
		Before: 200 * time.Millisecond, Stall: 500 * time.Millisecond, After: 100 * time.Millisecond, RcvBuf: 4096, Admin: adminFor(t, e)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if !res.Exact || len(res.Onsets) != 2 {
		t.Fatalf("%+v", res)
	}
	for i, on := range res.Onsets {
		if on.Misnumbered != 0 || on.FirstGapFrom == 0 {
			t.Fatalf("onset %d: %+v", i, on)
		}
		if on.Early { // the race detector on a busy machine: the reader fell behind before the stop
			continue
		}
		if on.FirstGapFrom <= on.ReadBeforeStop || on.PolicyMs <= 0 || on.PolicyMs > 400 || on.BufferedBytes < 16<<10 {
			t.Fatalf("onset %d: %+v", i, on)
		}
	}
	if res.PolicyMs.N+res.Early != 2 || res.PolicyMs.N == 0 {
		t.Fatalf("%d measured onsets, %d early", res.PolicyMs.N, res.Early)
	}
	if res.Engine == nil || res.Engine.BackpressureDropped != uint64(res.Gapped) {
		t.Fatalf("engine %+v, the subscribers counted %d", res.Engine, res.Gapped)
	}
}

// TestSubscribersAnswerPings: a subscriber only reads; the server pings
// it after heartbeat_interval of silence and closes it after
// idle_timeout unless it answers. Fast and slow readers answer.
func TestSubscribersAnswerPings(t *testing.T) {
	e := enginetest.Start(t, engine.Config{HeartbeatInterval: 200 * time.Millisecond, IdleTimeout: 700 * time.Millisecond,
		Rooms: []engine.RoomPolicy{{Match: "load.fanout", Backpressure: engine.BPDropOldest, LagBytes: 16 << 10, MaxPending: 50}}})
	res, err := Run(context.Background(), Options{Scenario: "fanout", Addr: e.Addr().String(), Subscribers: 6, Slow: 2, SlowRead: 4 << 10,
		Rate: 20, Size: 100, Duration: 2 * time.Second, Warmup: 200 * time.Millisecond, Drain: 5 * time.Second, Admin: adminFor(t, e)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if q := res.Seqs; q == nil || !q.Exact() || q.Fast.Closed+q.Slow.Closed != 0 {
		t.Fatalf("seqs: %+v", res.Seqs)
	}
	if res.Engine.IdleTimeouts != 0 {
		t.Fatalf("%d subscribers closed as idle", res.Engine.IdleTimeouts)
	}
}

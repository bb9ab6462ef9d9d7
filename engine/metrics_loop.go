package engine

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"streamd/internal/hist"
)

// Room names of the system rooms the engine publishes into.
const (
	RoomMetrics = "$sys.metrics" // a MetricsSnapshot every MetricsInterval
	RoomAlerts  = "$sys.alerts"  // alert notifications (firing, resolved)
)

// histBoundsMs are the buckets of MetricsSnapshot.Histogram.
var histBoundsMs = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000}

// totals are the counters a snapshot turns into rates.
type totals struct {
	at                time.Time
	in, out           uint64
	bytesIn, bytesOut uint64
	accepted          int64
}

// sampler is the state of the metrics goroutine between snapshots.
type sampler struct {
	prev    totals
	minute  []totals // ring of the last 61 samples, for 1-minute rates
	prevE2E hist.Snapshot
	nodes   map[string][2]uint64 // pipeline/node → in, out at the last sample
	rt      []metrics.Sample
}

// stageSnapshots merges every owner's histograms, by stage.
func (e *Engine) stageSnapshots() map[string]*hist.Snapshot {
	out := make(map[string]*hist.Snapshot, len(Stages))
	for _, st := range Stages {
		out[st] = new(hist.Snapshot)
	}
	for i := range e.loops {
		if ls := e.loops[i].Load(); ls != nil {
			ls.metrics.ingress.AddTo(out[StageIngress])
			ls.metrics.fanout.AddTo(out[StageFanout])
			ls.metrics.e2e.AddTo(out[StageE2E])
			ls.np.Counters().Write.AddTo(out[StageWrite])
		}
	}
	for _, sh := range e.shards {
		sh.metrics.ring.AddTo(out[StageRing])
	}
	return out
}

func summary(s *hist.Snapshot) LatencySummary {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return LatencySummary{Count: s.Total(), P50: ms(s.Quantile(0.5)), P90: ms(s.Quantile(0.9)),
		P99: ms(s.Quantile(0.99)), P999: ms(s.Quantile(0.999)), Max: ms(s.Max)}
}

func (e *Engine) totalsNow() totals {
	t := totals{at: time.Now(), accepted: e.srv.Stats().Accepted.Load()}
	for i := range e.loops {
		if ls := e.loops[i].Load(); ls != nil {
			t.in += ls.counters.received.Load()
			t.out += ls.counters.delivered.Load()
			c := ls.np.Counters()
			t.bytesIn += c.BytesIn.Load()
			t.bytesOut += c.BytesOut.Load()
		}
	}
	return t
}

func perS(a, b uint64, d time.Duration) float64 {
	if d <= 0 || a < b {
		return 0
	}
	return float64(a-b) / d.Seconds()
}

// takeSnapshot builds a snapshot and moves the sampler on. Metrics
// goroutine only.
func (e *Engine) takeSnapshot(sp *sampler) *MetricsSnapshot {
	now := e.totalsNow()
	if sp.prev.at.IsZero() {
		sp.prev = totals{at: e.started}
	}
	d := now.at.Sub(sp.prev.at)
	sp.minute = append(sp.minute, now)
	if len(sp.minute) > 61 {
		sp.minute = sp.minute[1:]
	}
	old := sp.minute[0]
	dm := now.at.Sub(old.at)

	st := e.Stats()
	ns := e.srv.Stats()
	snap := &MetricsSnapshot{
		Time:    now.at.UnixMilli(),
		UptimeS: now.at.Sub(e.started).Seconds(),
		Rooms:   st.Rooms,
		Messages: RateMetrics{InTotal: now.in, OutTotal: now.out,
			InPerS: perS(now.in, sp.prev.in, d), OutPerS: perS(now.out, sp.prev.out, d),
			InPerS1m: perS(now.in, old.in, dm), OutPerS1m: perS(now.out, old.out, dm)},
		Bytes: RateMetrics{InTotal: now.bytesIn, OutTotal: now.bytesOut,
			InPerS: perS(now.bytesIn, sp.prev.bytesIn, d), OutPerS: perS(now.bytesOut, sp.prev.bytesOut, d),
			InPerS1m: perS(now.bytesIn, old.bytesIn, dm), OutPerS1m: perS(now.bytesOut, old.bytesOut, dm)},
		Drops:  map[string]int64{"slow_consumer": st.SlowConsumerDrops, "backpressure": int64(st.BackpressureDropped)},
		Errors: make(map[string]int64, len(errorCodes)),

		Forbidden:    make(map[string]int64, nActions),
		AuthFailures: make(map[string]int64, nAuthReasons),
		Latency:      map[string]LatencySummary{},
	}
	snap.Connections.Open = st.Connections
	snap.Connections.OpenedPerS = perS(uint64(now.accepted), uint64(sp.prev.accepted), d)
	closed := map[string]int64{
		"protocol_error":   ns.ProtocolErrors.Load(),
		"idle_timeout":     ns.IdleTimeouts.Load(),
		"slow_consumer":    ns.SlowConsumerDrops.Load() + int64(st.BackpressureDisconnects),
		"handshake_failed": ns.HandshakeFailures.Load() + ns.HandshakeTimeouts.Load(),
	}
	other := ns.Accepted.Load() - ns.Open.Load() - ns.Rejected.Load()
	for _, v := range closed {
		other -= v
	}
	closed["client_or_shutdown"] = max(other, 0)
	snap.Connections.Closed = closed

	var ringFill float64
	fill := func(l, c int) {
		if c > 0 {
			ringFill = max(ringFill, float64(l)/float64(c))
		}
	}
	for i := range e.loops {
		ls := e.loops[i].Load()
		if ls == nil {
			continue
		}
		snap.Members += ls.metrics.members.Load()
		snap.Queues.OutboundBytes += ls.np.Counters().Outbound.Load()
		for k, c := range errorCodes {
			if n := ls.metrics.errCodes[k].Load(); n > 0 {
				snap.Errors[c] += int64(n)
			}
		}
		for k, a := range actionNames {
			snap.Forbidden[a] += int64(ls.metrics.forbidden[k].Load())
		}
		for k, r := range authReasons {
			snap.AuthFailures[r] += int64(ls.metrics.authFail[k].Load())
		}
	}
	for _, a := range actionNames { // every action and reason, so rules always see a value
		snap.Forbidden[a] += 0
	}
	for _, r := range authReasons {
		snap.AuthFailures[r] += 0
	}
	for _, sh := range e.shards {
		for _, r := range sh.in {
			fill(r.Len(), r.Cap())
		}
		for _, r := range sh.toLoop {
			fill(r.Len(), r.Cap())
		}
	}
	for _, x := range e.execs {
		for _, r := range x.in {
			fill(r.Len(), r.Cap())
		}
		for _, r := range x.toLoop {
			fill(r.Len(), r.Cap())
		}
	}
	snap.Queues.RingFillMax = ringFill
	for _, c := range errorCodes { // every known code, so rules on them always see a value
		snap.Errors[c] += 0
	}

	stages := e.stageSnapshots()
	if e.full {
		for name, s := range stages {
			snap.Latency[name] = summary(s)
		}
	}
	delta := stages[StageE2E].Sub(&sp.prevE2E)
	sp.prevE2E = *stages[StageE2E]
	bounds := make([]int64, len(histBoundsMs))
	for i, b := range histBoundsMs {
		bounds[i] = int64(b * 1e6)
	}
	cum, _ := delta.Cumulative(bounds)
	counts := make([]uint64, len(bounds)+1)
	var prevC uint64
	for i, c := range cum {
		counts[i] = c - prevC
		prevC = c
	}
	counts[len(bounds)] = delta.Total() - prevC
	snap.Histogram = HistogramBuckets{BoundsMs: histBoundsMs, Counts: counts}

	// pipelines
	var nodeDropped, retired, overflow int64
	if sp.nodes == nil {
		sp.nodes = map[string][2]uint64{}
	}
	for name, nodes := range e.PipelineStats() {
		for _, n := range nodes {
			key := name + "/" + n.Name
			prev := sp.nodes[key]
			snap.Pipelines = append(snap.Pipelines, NodeMetrics{Pipeline: name, Node: n.Name, Kind: n.Kind,
				InPerS: perS(n.In, prev[0], d), OutPerS: perS(n.Out, prev[1], d),
				Dropped: n.Dropped, Errors: n.Errors, Late: n.Late, P99Ms: float64(n.P99) / 1e6})
			sp.nodes[key] = [2]uint64{n.In, n.Out}
			nodeDropped += int64(n.Dropped)
		}
	}
	e.pipesMu.Lock()
	for _, rt := range e.pipes {
		retired += int64(rt.dropped.Load())
		overflow += int64(rt.overflowed.Load())
	}
	e.pipesMu.Unlock()
	snap.Drops["pipeline_nodes"] = nodeDropped
	snap.Drops["pipeline_retired"] = retired
	snap.Drops["pipeline_overflow"] = overflow

	if st := e.store; st != nil {
		ss := st.Stats()
		snap.State = &StateMetrics{Commits: ss.Commits, Writes: ss.Writes, CommitFailures: ss.CommitFailures,
			DurableFailures: e.durableFailures.Load(), Duplicates: e.duplicates.Load(),
			Checkpoints: e.ckCommits.Load(), CheckpointFailures: e.ckFailures.Load(),
			GCRuns: ss.GCRuns, GCFilesReclaimed: ss.GCFilesReclaimed, LSMBytes: ss.LSMBytes, VLogBytes: ss.VLogBytes}
	}
	if ts, ok := e.TLSStats(); ok {
		snap.TLS = &ts
	}
	snap.Runtime = sp.runtimeMetrics()
	sp.prev = now
	return snap
}

// runtimeMetrics reads the Go runtime's and the process's figures.
func (sp *sampler) runtimeMetrics() RuntimeMetrics {
	if sp.rt == nil {
		sp.rt = []metrics.Sample{
			{Name: "/sched/goroutines:goroutines"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/gc/cycles/total:gc-cycles"},
			{Name: "/sched/pauses/total/gc:seconds"},
		}
	}
	metrics.Read(sp.rt)
	var r RuntimeMetrics
	if v := sp.rt[0].Value; v.Kind() == metrics.KindUint64 {
		r.Goroutines = int64(v.Uint64())
	} else {
		r.Goroutines = int64(runtime.NumGoroutine())
	}
	if v := sp.rt[1].Value; v.Kind() == metrics.KindUint64 {
		r.HeapBytes = int64(v.Uint64())
	}
	if v := sp.rt[2].Value; v.Kind() == metrics.KindUint64 {
		r.GCCycles = int64(v.Uint64())
	}
	if v := sp.rt[3].Value; v.Kind() == metrics.KindFloat64Histogram {
		h := v.Float64Histogram()
		var total uint64
		for _, c := range h.Counts {
			total += c
		}
		if total > 0 {
			rank := uint64(float64(total)*0.99 + 0.5)
			var n uint64
			for i, c := range h.Counts {
				n += c
				if n >= rank {
					r.GCPauseP99Ms = h.Buckets[i+1] * 1e3
					break
				}
			}
		}
	}
	r.RSSBytes = rss()
	return r
}

// rss reads the process's resident set size (Linux; 0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Metrics returns the latest snapshot (nil before the first one). Safe
// from any goroutine; the snapshot must not be modified.
func (e *Engine) Metrics() *MetricsSnapshot { return e.snapshot.Load() }

// publishSnapshot takes a snapshot, runs the alert rules on it, keeps it
// for Metrics and publishes it into RoomMetrics (every MetricsInterval).
func (e *Engine) publishSnapshot(sp *sampler) {
	snap := e.takeSnapshot(sp)
	e.evalAlerts(snap)
	e.snapshot.Store(snap)
	if b, err := json.Marshal(snap); err == nil {
		e.publishSystem(RoomMetrics, b)
	}
}

// publishSystem publishes engine-made JSON into a system room.
func (e *Engine) publishSystem(roomName string, data []byte) {
	if e.state.Load() == stateStarted {
		_, _ = e.publishJSON(roomName, data, 0)
	}
}

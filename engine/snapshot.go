package engine

import (
	"sort"
)

// MetricsSnapshot is what the engine reports once a second: published as
// JSON into the system room "$sys.metrics", served by the admin port's
// /stats/metrics, drawn by the dashboard and read by alert rules (through
// Flatten). Rates are per second over the last second (…_per_s) and the
// last minute (…_per_s_1m). Latencies are in milliseconds.
type MetricsSnapshot struct {
	Time    int64   `json:"time"` // Unix ms
	UptimeS float64 `json:"uptime_s"`

	Connections ConnMetrics      `json:"connections"`
	Rooms       int64            `json:"rooms"`
	Members     int64            `json:"members"` // room memberships (a connection in 3 rooms counts 3)
	Messages    RateMetrics      `json:"messages"`
	Bytes       RateMetrics      `json:"bytes"`
	Drops       map[string]int64 `json:"drops"`  // totals by reason
	Errors      map[string]int64 `json:"errors"` // `error` answers, totals by code
	// Forbidden counts denied actions by action (join, publish,
	// history, presence); AuthFailures refused or ended
	// authentications by reason (invalid, expired, timeout, missing,
	// subject_changed). Totals.
	Forbidden    map[string]int64 `json:"forbidden"`
	AuthFailures map[string]int64 `json:"auth_failures"`
	Queues       QueueMetrics     `json:"queues"`
	Runtime      RuntimeMetrics   `json:"runtime"`

	// Latency by stage: ingress (frame read → handed on), ring (loop →
	// shard), fanout (shard → receiving loop), write (frame queued →
	// socket write), e2e (frame read → delivery queued on the receiving
	// loop). Since the engine started.
	Latency map[string]LatencySummary `json:"latency"`
	// Histogram is the end-to-end latency distribution of the last second.
	Histogram HistogramBuckets `json:"histogram"`

	Pipelines []NodeMetrics `json:"pipelines"`
	// State is the state store's figures (absent without durable rooms).
	State  *StateMetrics `json:"state,omitempty"`
	TLS    *TLSStats     `json:"tls,omitempty"` // the TLS listener (absent without a tls block)
	Alerts []AlertState  `json:"alerts"`        // firing alerts
}

// StateMetrics are the state store's and the durable rooms' figures.
type StateMetrics struct {
	Commits         uint64 `json:"commits"`          // group commits (one fsync each)
	Writes          uint64 `json:"writes"`           // writes those commits carried
	CommitFailures  uint64 `json:"commit_failures"`  // commits that failed (each write got the error)
	DurableFailures uint64 `json:"durable_failures"` // durable publishes refused with not_durable
	Duplicates      uint64 `json:"duplicates"`       // exactly-once resends answered as duplicates
	Checkpoints     uint64 `json:"checkpoints"`      // pipeline checkpoints committed
	// CheckpointFailures counts pipeline checkpoints that could not be
	// taken or committed (they are retried; nothing is acknowledged).
	CheckpointFailures uint64 `json:"checkpoint_failures"`
	GCRuns             uint64 `json:"gc_runs"` // value-log GC passes
	GCFilesReclaimed   uint64 `json:"gc_files_reclaimed"`
	LSMBytes           int64  `json:"lsm_bytes"`
	VLogBytes          int64  `json:"vlog_bytes"`
}

// ConnMetrics are connection figures.
type ConnMetrics struct {
	Open       int64            `json:"open"`
	OpenedPerS float64          `json:"opened_per_s"`
	Closed     map[string]int64 `json:"closed"` // totals by reason
}

// RateMetrics are totals and rates of one direction pair.
type RateMetrics struct {
	InTotal   uint64  `json:"in_total"`
	OutTotal  uint64  `json:"out_total"`
	InPerS    float64 `json:"in_per_s"`
	OutPerS   float64 `json:"out_per_s"`
	InPerS1m  float64 `json:"in_per_s_1m"`
	OutPerS1m float64 `json:"out_per_s_1m"`
}

// QueueMetrics are the backpressure gauges.
type QueueMetrics struct {
	RingFillMax   float64 `json:"ring_fill_max"`  // fullest loop↔shard ring, 0…1
	OutboundBytes int64   `json:"outbound_bytes"` // bytes waiting to be written, all connections
}

// RuntimeMetrics are the Go runtime's and the process's figures.
type RuntimeMetrics struct {
	Goroutines   int64   `json:"goroutines"`
	HeapBytes    int64   `json:"heap_bytes"`
	RSSBytes     int64   `json:"rss_bytes"`
	GCPauseP99Ms float64 `json:"gc_pause_p99_ms"`
	GCCycles     int64   `json:"gc_cycles"`
}

// LatencySummary is one stage's percentiles, in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// HistogramBuckets is a latency distribution: Counts[i] values were ≤
// BoundsMs[i] (and above the previous bound); the last bucket is +Inf.
type HistogramBuckets struct {
	BoundsMs []float64 `json:"bounds_ms"`
	Counts   []uint64  `json:"counts"`
}

// NodeMetrics are one pipeline node's figures.
type NodeMetrics struct {
	Pipeline string  `json:"pipeline"`
	Node     string  `json:"node"`
	Kind     string  `json:"kind"`
	InPerS   float64 `json:"in_per_s"`
	OutPerS  float64 `json:"out_per_s"`
	Dropped  uint64  `json:"dropped"`
	Errors   uint64  `json:"errors"`
	Late     uint64  `json:"late"`
	P99Ms    float64 `json:"p99_ms"`
}

// AlertState is a firing alert, as the snapshot carries it.
type AlertState struct {
	Name     string  `json:"name"`
	Severity string  `json:"severity"`
	Since    int64   `json:"since"` // Unix ms
	Value    float64 `json:"value"`
	Message  string  `json:"message"`
	Action   string  `json:"action,omitempty"`
}

// Flatten returns the snapshot's numbers by dotted name, the names alert
// rules use: "connections.open", "messages.in_per_s",
// "latency.e2e.p99", "drops.slow_consumer", "errors.bad_json",
// "queues.ring_fill_max", "runtime.rss_bytes",
// "pipeline.NAME.NODE.p99_ms", … (FlattenNames lists them).
func (s *MetricsSnapshot) Flatten() map[string]float64 {
	m := map[string]float64{
		"uptime_s":                 s.UptimeS,
		"connections.open":         float64(s.Connections.Open),
		"connections.opened_per_s": s.Connections.OpenedPerS,
		"rooms":                    float64(s.Rooms),
		"members":                  float64(s.Members),
		"queues.ring_fill_max":     s.Queues.RingFillMax,
		"queues.outbound_bytes":    float64(s.Queues.OutboundBytes),
		"runtime.goroutines":       float64(s.Runtime.Goroutines),
		"runtime.heap_bytes":       float64(s.Runtime.HeapBytes),
		"runtime.rss_bytes":        float64(s.Runtime.RSSBytes),
		"runtime.gc_pause_p99_ms":  s.Runtime.GCPauseP99Ms,
	}
	rate := func(prefix string, r RateMetrics) {
		m[prefix+".in_total"] = float64(r.InTotal)
		m[prefix+".out_total"] = float64(r.OutTotal)
		m[prefix+".in_per_s"] = r.InPerS
		m[prefix+".out_per_s"] = r.OutPerS
		m[prefix+".in_per_s_1m"] = r.InPerS1m
		m[prefix+".out_per_s_1m"] = r.OutPerS1m
	}
	rate("messages", s.Messages)
	rate("bytes", s.Bytes)
	for k, v := range s.Connections.Closed {
		m["connections.closed."+k] = float64(v)
	}
	for k, v := range s.Drops {
		m["drops."+k] = float64(v)
	}
	for k, v := range s.Errors {
		m["errors."+k] = float64(v)
	}
	for k, v := range s.Forbidden {
		m["forbidden."+k] = float64(v)
	}
	for k, v := range s.AuthFailures {
		m["auth_failures."+k] = float64(v)
	}
	for stage, l := range s.Latency {
		p := "latency." + stage + "."
		m[p+"p50"], m[p+"p90"], m[p+"p99"], m[p+"p999"], m[p+"max"] = l.P50, l.P90, l.P99, l.P999, l.Max
		m[p+"count"] = float64(l.Count)
	}
	if st := s.State; st != nil {
		m["state.commits"], m["state.writes"], m["state.commit_failures"] = float64(st.Commits), float64(st.Writes), float64(st.CommitFailures)
		m["state.durable_failures"], m["state.duplicates"] = float64(st.DurableFailures), float64(st.Duplicates)
		m["state.checkpoints"], m["state.checkpoint_failures"] = float64(st.Checkpoints), float64(st.CheckpointFailures)
		m["state.gc_runs"], m["state.gc_files_reclaimed"] = float64(st.GCRuns), float64(st.GCFilesReclaimed)
		m["state.lsm_bytes"], m["state.vlog_bytes"] = float64(st.LSMBytes), float64(st.VLogBytes)
	}
	s.TLS.flattenInto(m, s.Time)
	for _, n := range s.Pipelines {
		p := "pipeline." + n.Pipeline + "." + n.Node + "."
		m[p+"in_per_s"], m[p+"out_per_s"], m[p+"p99_ms"] = n.InPerS, n.OutPerS, n.P99Ms
		m[p+"dropped"], m[p+"errors"], m[p+"late"] = float64(n.Dropped), float64(n.Errors), float64(n.Late)
	}
	return m
}

// FlattenNames lists the names Flatten gives, sorted.
func (s *MetricsSnapshot) FlattenNames() []string {
	m := s.Flatten()
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

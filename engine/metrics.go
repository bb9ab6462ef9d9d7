package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metricDesc describes one Stats field as a Prometheus metric.
type metricDesc struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*Stats) float64
}

// collector exposes an Engine's Stats as streamd_* metrics. It reads Stats
// once per scrape; nothing is counted twice and nothing runs between
// scrapes, so it costs the hot path nothing.
type collector struct {
	e     *Engine
	descs []metricDesc
}

// Collector returns a prometheus.Collector that reports the engine's Stats
// as streamd_* metrics: gauges for what is open now (connections, rooms),
// counters for totals since Start. Register it once per registry. Safe from
// any goroutine; each Collect takes one Stats snapshot.
func (e *Engine) Collector() prometheus.Collector {
	gauge := func(name, help string, v func(*Stats) float64) metricDesc {
		return metricDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v}
	}
	counter := func(name, help string, v func(*Stats) float64) metricDesc {
		return metricDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, v}
	}
	return &collector{e: e, descs: []metricDesc{
		gauge("streamd_connections", "WebSocket connections open now.",
			func(s *Stats) float64 { return float64(s.Connections) }),
		gauge("streamd_rooms", "Rooms that exist now.",
			func(s *Stats) float64 { return float64(s.Rooms) }),
		counter("streamd_connections_accepted_total", "TCP connections accepted.",
			func(s *Stats) float64 { return float64(s.Accepted) }),
		counter("streamd_connections_rejected_total", "Connections refused before the upgrade (over max_connections, or shutting down).",
			func(s *Stats) float64 { return float64(s.Rejected) }),
		counter("streamd_messages_received_total", "Client messages (envelopes) received.",
			func(s *Stats) float64 { return float64(s.Received) }),
		counter("streamd_messages_published_total", "Messages published to rooms (by clients and by Engine.Publish).",
			func(s *Stats) float64 { return float64(s.Published) }),
		counter("streamd_messages_delivered_total", "Room messages delivered to members (one per receiver).",
			func(s *Stats) float64 { return float64(s.Delivered) }),
		counter("streamd_errors_total", "Client messages refused with an error (bad input, unknown room or stream, limits); each message over a rate limit counts, though at most one rate_limited answer a second is sent.",
			func(s *Stats) float64 { return float64(s.Errors) }),
		counter("streamd_protocol_errors_total", "Connections closed for a WebSocket protocol fault (close 1002, 1007, 1009).",
			func(s *Stats) float64 { return float64(s.ProtocolErrors) }),
		counter("streamd_slow_consumer_drops_total", "Connections dropped because their unsent bytes passed write_buffer_limit.",
			func(s *Stats) float64 { return float64(s.SlowConsumerDrops) }),
		counter("streamd_backpressure_dropped_total", "Room messages lagging members did not get: dropped or conflated by their backpressure policy (each announced by a gap notice).",
			func(s *Stats) float64 { return float64(s.BackpressureDropped) }),
		counter("streamd_backpressure_disconnects_total", "Members closed (4008) by the disconnect backpressure policy.",
			func(s *Stats) float64 { return float64(s.BackpressureDisconnects) }),
		counter("streamd_gap_notices_total", "Gap notices sent to members that lost messages to backpressure.",
			func(s *Stats) float64 { return float64(s.GapNotices) }),
		counter("streamd_flow_pauses_total", "Flow pauses sent to producers nearing their rate limit (flow_control).",
			func(s *Stats) float64 { return float64(s.FlowPauses) }),
		counter("streamd_rate_blocked_total", "Messages over their connection's rate limit that waited for tokens while its reading was paused (rate_limit_overflow: block).",
			func(s *Stats) float64 { return float64(s.RateBlocked) }),
		counter("streamd_idle_timeouts_total", "Connections closed after idle_timeout of silence.",
			func(s *Stats) float64 { return float64(s.IdleTimeouts) }),
		counter("streamd_handshake_failures_total", "HTTP upgrades that failed or timed out.",
			func(s *Stats) float64 { return float64(s.HandshakeFailures) }),
		counter("streamd_events_total", "`event` messages handed to pipelines.",
			func(s *Stats) float64 { return float64(s.Events) }),
		counter("streamd_results_total", "Pipeline `result`s sent to clients.",
			func(s *Stats) float64 { return float64(s.Results) }),
		counter("streamd_presence_notices_total", "Presence notices broadcast to a room (user_joined, user_left, presence_batch).",
			func(s *Stats) float64 { return float64(s.PresenceNotices) }),
	}}
}

// Per-node pipeline metrics, labelled pipeline, node and kind.
var (
	pipeLabels   = []string{"pipeline", "node", "kind"}
	mPipeIn      = prometheus.NewDesc("streamd_pipeline_events_in_total", "Events a pipeline node received.", pipeLabels, nil)
	pipeOut      = prometheus.NewDesc("streamd_pipeline_events_out_total", "Events a pipeline node emitted.", pipeLabels, nil)
	pipeDropped  = prometheus.NewDesc("streamd_pipeline_events_dropped_total", "Events a node discarded on purpose (filtered, throttled, deduplicated).", pipeLabels, nil)
	pipeErrors   = prometheus.NewDesc("streamd_pipeline_errors_total", "Events a node failed on.", pipeLabels, nil)
	pipeLate     = prometheus.NewDesc("streamd_pipeline_late_events_total", "Events that came after their window closed (sent to the late port).", pipeLabels, nil)
	pipeLatency  = prometheus.NewDesc("streamd_pipeline_node_latency_seconds", "A node's own processing time per event, quantiles over its lifetime.", append(pipeLabels, "quantile"), nil)
	pipeCounter  = prometheus.NewDesc("streamd_pipeline_node_counter_total", "A node's own counters (AI ops: prompt_tokens, completion_tokens, cache_hits, retries, …), label counter.", append(pipeLabels, "counter"), nil)
	pipeGauge    = prometheus.NewDesc("streamd_pipeline_node_gauge", "A node's own gauges (an adaptive map's workers, queue, workers_min, workers_max, queue_high, queue_low), label gauge.", append(pipeLabels, "gauge"), nil)
	pipeDescList = []*prometheus.Desc{mPipeIn, pipeOut, pipeDropped, pipeErrors, pipeLate, pipeLatency, pipeCounter, pipeGauge}

	stageLatency = prometheus.NewDesc("streamd_stage_latency_seconds",
		"Latency by stage of the message path (metrics: full): ingress, ring, fanout, write (per flush), e2e (frame read → delivery queued).",
		[]string{"stage"}, nil)
	errorsByCode  = prometheus.NewDesc("streamd_errors_by_code_total", "Client messages refused with an error, by code (rate_limited: every message over a rate limit, answered at most once a second).", []string{"code"}, nil)
	closedBy      = prometheus.NewDesc("streamd_connections_closed_total", "Connections closed, by reason.", []string{"reason"}, nil)
	bytesIn       = prometheus.NewDesc("streamd_bytes_received_total", "WebSocket frame bytes received.", nil, nil)
	bytesOut      = prometheus.NewDesc("streamd_bytes_sent_total", "Bytes handed to sockets.", nil, nil)
	membersGauge  = prometheus.NewDesc("streamd_members", "Room memberships now (a connection in three rooms counts three).", nil, nil)
	ringFill      = prometheus.NewDesc("streamd_ring_fill_ratio", "Fill of the fullest loop↔shard/executor ring now, 0…1 (a backpressure gauge).", nil, nil)
	outboundBytes = prometheus.NewDesc("streamd_outbound_bytes", "Bytes held unsent for all connections at the last heartbeat scan (a backpressure gauge).", nil, nil)
	forbiddenBy   = prometheus.NewDesc("streamd_forbidden_total", "Client actions denied by permissions (answered `forbidden`), by action: join, publish, history, presence.", []string{"action"}, nil)
	authFailures  = prometheus.NewDesc("streamd_auth_failures_total", "Authentications refused or ended, by reason: invalid (a token that does not verify), expired, timeout (no auth message in time), missing (no token, or a message before auth), subject_changed (a refresh for another subject).", []string{"reason"}, nil)
	extraDescList = []*prometheus.Desc{stageLatency, errorsByCode, closedBy, bytesIn, bytesOut, membersGauge, ringFill, outboundBytes, forbiddenBy, authFailures}

	// promBounds are the Prometheus buckets of the stage histograms (seconds).
	promBounds = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for i := range c.descs {
		ch <- c.descs[i].desc
	}
	for _, d := range pipeDescList {
		ch <- d
	}
	for _, d := range extraDescList {
		ch <- d
	}
	for _, d := range tlsDescList {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.Stats()
	for i := range c.descs {
		d := &c.descs[i]
		ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(&s))
	}
	c.collectExtra(ch)
	c.e.collectTLS(ch)
	for name, nodes := range c.e.PipelineStats() {
		for _, n := range nodes {
			l := []string{name, n.Name, n.Kind}
			ch <- prometheus.MustNewConstMetric(mPipeIn, prometheus.CounterValue, float64(n.In), l...)
			ch <- prometheus.MustNewConstMetric(pipeOut, prometheus.CounterValue, float64(n.Out), l...)
			ch <- prometheus.MustNewConstMetric(pipeDropped, prometheus.CounterValue, float64(n.Dropped), l...)
			ch <- prometheus.MustNewConstMetric(pipeErrors, prometheus.CounterValue, float64(n.Errors), l...)
			ch <- prometheus.MustNewConstMetric(pipeLate, prometheus.CounterValue, float64(n.Late), l...)
			for k, v := range n.Counters {
				ch <- prometheus.MustNewConstMetric(pipeCounter, prometheus.CounterValue, float64(v), append(l, k)...)
			}
			for k, v := range n.Gauges {
				ch <- prometheus.MustNewConstMetric(pipeGauge, prometheus.GaugeValue, float64(v), append(l, k)...)
			}
			for _, q := range [...]struct {
				q string
				v int64
			}{{"0.5", n.P50}, {"0.99", n.P99}, {"0.999", n.P999}, {"1", n.Max}} {
				ch <- prometheus.MustNewConstMetric(pipeLatency, prometheus.GaugeValue, float64(q.v)/1e9, append(l, q.q)...)
			}
		}
	}
}

// collectExtra reports the stage histograms and the labelled counters.
func (c *collector) collectExtra(ch chan<- prometheus.Metric) {
	e := c.e
	if e.full {
		ns := make([]int64, len(promBounds))
		for i, b := range promBounds {
			ns[i] = int64(b * 1e9)
		}
		for stage, s := range e.stageSnapshots() {
			cum, sum := s.Cumulative(ns)
			buckets := make(map[float64]uint64, len(promBounds))
			for i, b := range promBounds {
				buckets[b] = cum[i]
			}
			ch <- prometheus.MustNewConstHistogram(stageLatency, s.Total(), sum/1e9, buckets, stage)
		}
	}
	var sp sampler // a throwaway sampler: totals only, no rates needed
	snap := e.takeSnapshot(&sp)
	for code, n := range snap.Errors {
		ch <- prometheus.MustNewConstMetric(errorsByCode, prometheus.CounterValue, float64(n), code)
	}
	for reason, n := range snap.Connections.Closed {
		ch <- prometheus.MustNewConstMetric(closedBy, prometheus.CounterValue, float64(n), reason)
	}
	for act, n := range snap.Forbidden {
		ch <- prometheus.MustNewConstMetric(forbiddenBy, prometheus.CounterValue, float64(n), act)
	}
	for reason, n := range snap.AuthFailures {
		ch <- prometheus.MustNewConstMetric(authFailures, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(bytesIn, prometheus.CounterValue, float64(snap.Bytes.InTotal))
	ch <- prometheus.MustNewConstMetric(bytesOut, prometheus.CounterValue, float64(snap.Bytes.OutTotal))
	ch <- prometheus.MustNewConstMetric(membersGauge, prometheus.GaugeValue, float64(snap.Members))
	ch <- prometheus.MustNewConstMetric(ringFill, prometheus.GaugeValue, snap.Queues.RingFillMax)
	ch <- prometheus.MustNewConstMetric(outboundBytes, prometheus.GaugeValue, float64(snap.Queues.OutboundBytes))
}

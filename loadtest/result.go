package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 5 minutes, with 3
// significant digits (0.1 % resolution).
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)
}

// Result is what one run measured. Latencies are in milliseconds, measured
// from each message's scheduled send time to its arrival.
type Result struct {
	Scenario        string  `json:"scenario"`
	Server          string  `json:"server"`
	Conns           int     `json:"conns"`
	Subscribers     int     `json:"subscribers,omitempty"`
	Publishers      int     `json:"publishers,omitempty"`
	Rate            float64 `json:"rate"`
	Burst           int     `json:"burst"`
	DurationS       float64 `json:"duration_s"`
	Sent            int64   `json:"sent"`
	Expected        int64   `json:"expected"`
	Received        int64   `json:"received"`
	Lost            int64   `json:"lost"`
	ThroughputPerS  float64 `json:"throughput_per_s"`
	P50ms           float64 `json:"p50_ms"`
	P90ms           float64 `json:"p90_ms"`
	P99ms           float64 `json:"p99_ms"`
	P999ms          float64 `json:"p999_ms"`
	MaxMs           float64 `json:"max_ms"`
	ServerCPUs      float64 `json:"server_cpu_s,omitempty"`
	ServerPeakRSS   int64   `json:"server_peak_rss_kib,omitempty"`
	GenCPUCores     float64 `json:"gen_cpu_cores"`
	LateSends       int64   `json:"late_sends"`
	GenLimited      bool    `json:"gen_limited"`
	GenLimitedWhy   string  `json:"gen_limited_why,omitempty"`
	ConnectFailures int     `json:"connect_failures,omitempty"`
	LoadAvg1m       float64 `json:"load_avg_1m"`             // the machine's 1-minute load average when the run began
	ErrorAnswers    int64   `json:"error_answers,omitempty"` // `error` frames the server sent
	FirstError      string  `json:"first_error,omitempty"`

	// storm scenario
	Reconnected       int     `json:"reconnected,omitempty"`
	ReconnectFailures int     `json:"reconnect_failures,omitempty"`
	RecoveryMs        float64 `json:"recovery_ms,omitempty"`
	Gaps              int64   `json:"gaps,omitempty"`
	Duplicates        int64   `json:"duplicates,omitempty"`
	Unrecovered       int64   `json:"unrecovered,omitempty"`
	Notes             string  `json:"notes,omitempty"`

	// fanout --count / --slow-read: every subscriber's seqs, counted.
	Seqs *SeqReport `json:"seqs,omitempty"`
	// echo --flood: what the flooders sent and what the server took.
	Flood *FloodResult `json:"flood,omitempty"`
	// --admin: the engine's counters over the run (after − before).
	Engine *EngineCounters `json:"engine,omitempty"`
	// --pid: the server's RSS once a second (T from the window's start)
	// and its summary over the window.
	ServerRSS []RSSSample `json:"server_rss,omitempty"`
	RSS       *RSSSummary `json:"rss,omitempty"`

	hist *hdrhistogram.Histogram
}

// Histogram returns the run's latency histogram (µs).
func (r *Result) Histogram() *hdrhistogram.Histogram { return r.hist }

func (r *Result) fill(h *hdrhistogram.Histogram) {
	r.hist = h
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	r.P50ms, r.P90ms, r.P99ms, r.P999ms = ms(50), ms(90), ms(99), ms(99.9)
	r.MaxMs = float64(h.Max()) / 1000
}

// Summary is the human-readable closing block.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s against %s: %d conns", r.Scenario, r.Server, r.Conns)
	if r.Subscribers > 0 {
		fmt.Fprintf(&b, " (%d subscribers, %d publishers)", r.Subscribers, r.Publishers)
	}
	fmt.Fprintf(&b, ", target %.0f msgs/s for %.0fs", r.Rate, r.DurationS)
	if r.Burst > 1 {
		fmt.Fprintf(&b, " in bursts of %d per connection", r.Burst)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  sent %d, delivered %d of %d expected, lost %d, %.0f deliveries/s\n",
		r.Sent, r.Received, r.Expected, r.Lost, r.ThroughputPerS)
	if r.Scenario == "storm" {
		fmt.Fprintf(&b, "  storm: %d subscribers dropped and re-joined with since in %.0f ms (%d failed); gaps %d, duplicates %d, recovered:false %d\n",
			r.Reconnected, r.RecoveryMs, r.ReconnectFailures, r.Gaps, r.Duplicates, r.Unrecovered)
	}
	fmt.Fprintf(&b, "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
		r.P50ms, r.P90ms, r.P99ms, r.P999ms, r.MaxMs)
	if r.ServerCPUs > 0 || r.ServerPeakRSS > 0 {
		fmt.Fprintf(&b, "  server: %.2f CPU s, peak RSS %d KiB\n", r.ServerCPUs, r.ServerPeakRSS)
	}
	if s := r.RSS; s != nil {
		fmt.Fprintf(&b, "  server RSS over the window: start %.1f MiB, end %.1f MiB, max %.1f MiB; slope %+.3f MiB/min over the last %.0f s (%d samples, rms %.2f MiB)\n",
			s.StartMiB, s.EndMiB, s.MaxMiB, s.SlopeMiBPerMin, s.FitSeconds, s.FitSamples, s.FitRMSMiB)
		if len(s.ByMinuteMiB) > 1 {
			b.WriteString("  server RSS by minute since the load began (mean MiB, warm-up included):")
			for _, m := range s.ByMinuteMiB {
				fmt.Fprintf(&b, " %.1f", m)
			}
			b.WriteString("\n")
		}
		if s.HeapMaxMiB > 0 {
			fmt.Fprintf(&b, "  server Go heap in use (admin): floor %.1f MiB in the window's first %.0f s, %.1f MiB in its last; max %.1f MiB\n",
				s.HeapFloorStartMiB, min(20, r.DurationS/3), s.HeapFloorEndMiB, s.HeapMaxMiB)
		}
	}
	if q := r.Seqs; q != nil {
		fmt.Fprintf(&b, "  seqs: %d published; fast %d/%d complete (delivered %d, gapped %d, dups %d, unannounced %d, closed %d); slow %d/%d complete (delivered %d + gapped %d in %d gap notices, dups %d, unannounced %d, misplaced %d, closed %d)\n",
			q.Published, q.Fast.Complete, q.Fast.Members, q.Fast.Delivered, q.Fast.Gapped, q.Fast.Dups, q.Fast.Unannounced, q.Fast.Closed,
			q.Slow.Complete, q.Slow.Members, q.Slow.Delivered, q.Slow.Gapped, q.Slow.GapNotices, q.Slow.Dups, q.Slow.Unannounced, q.Slow.Misplaced, q.Slow.Closed)
		if q.DropsMatch != nil {
			fmt.Fprintf(&b, "  engine backpressure_dropped %d, gap_notices %d: equal to the members' count: %v; every seq accounted for: %v\n",
				*q.EngineDropped, *q.EngineGapNotices, *q.DropsMatch, q.Exact())
		}
	}
	if f := r.Flood; f != nil {
		fmt.Fprintf(&b, "  flood (%d conn, own room, %.1f s): sent %d (%.0f/s), accepted %d (%.0f/s), rate_limited %d; %d rate_limited answers, %d pauses; counts final: %v\n",
			f.Conns, f.Seconds, f.Sent, f.SentPerS, f.Accepted, f.AcceptedPerS, f.RateLimited, f.LimitedAnswers, f.Pauses, f.Exact)
	}
	if e := r.Engine; e != nil {
		fmt.Fprintf(&b, "  engine (admin, over the run): received %d, published %d, delivered %d, rate_limited %d, backpressure_dropped %d, gap_notices %d, backpressure_disconnects %d, slow_consumer_drops %d, idle_timeouts %d, flow_pauses %d\n",
			e.Received, e.Published, e.Delivered, e.RateLimited, e.BackpressureDropped, e.GapNotices, e.BackpressureDisconnects, e.SlowConsumerDrops, e.IdleTimeouts, e.FlowPauses)
	}
	fmt.Fprintf(&b, "  generator: %.2f cores, %d sends more than 1 ms late", r.GenCPUCores, r.LateSends)
	if r.ErrorAnswers > 0 {
		fmt.Fprintf(&b, "\n  the server answered %d times with an error, first: %s", r.ErrorAnswers, r.FirstError)
	}
	if r.GenLimited {
		fmt.Fprintf(&b, "\n  WARNING: the generator was the limit (%s): these figures are not the server's", r.GenLimitedWhy)
	}
	return b.String()
}

// WriteJSON writes r to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteHgrm writes the percentile distribution in the .hgrm text format HDR
// plotters read (values in milliseconds).
func (r *Result) WriteHgrm(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.writeHgrm(f)
}

func (r *Result) writeHgrm(w io.Writer) error {
	if r.hist == nil {
		return fmt.Errorf("loadtest: no histogram")
	}
	_, err := r.hist.PercentilesPrint(w, 5, 1000)
	return err
}

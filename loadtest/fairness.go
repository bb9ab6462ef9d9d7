package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The fairness scenario: what one flooding producer does to the latency
// of well-behaved clients. It runs echo (Base: N connections at a fixed
// open-loop rate, each in its own room) Repeat times without and Repeat
// times with Flood flooders (flood.go: each in a room of its own,
// publishing as fast as the server reads), alternating — without, with,
// without, … — against the same server, and reports each run and the
// medians of each figure, with the ratios with/without.

// FairnessOptions configure the fairness scenario.
type FairnessOptions struct {
	Base   Options       // an echo run; Base.Flood flooders in the "with" runs (default 1)
	Repeat int           // runs of each; default 3
	Pause  time.Duration // between runs; default 1s
	OutDir string        // each run's JSON and .hgrm (without.N, with.N); "": none
	// MaxLoad: before each run, wait (up to LoadWait, default 10m) until
	// the 1-minute load average is below it (another build on the
	// machine would skew the figures); 0: don't.
	MaxLoad  float64
	LoadWait time.Duration
	Log      io.Writer
}

// Figures are one set of run figures (or their medians).
type Figures struct {
	P50ms          float64 `json:"p50_ms"`
	P90ms          float64 `json:"p90_ms"`
	P99ms          float64 `json:"p99_ms"`
	P999ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
	ThroughputPerS float64 `json:"throughput_per_s"`
	Lost           int64   `json:"lost"`
	LateSends      int64   `json:"late_sends"`
	GenLimited     int     `json:"gen_limited"`
	Runs           int     `json:"runs"`
}

// FairnessResult is the fairness scenario's result.
type FairnessResult struct {
	Scenario string    `json:"scenario"`
	Runs     []*Result `json:"runs"` // Server "without" or "with", in the order run
	Without  Figures   `json:"without"`
	With     Figures   `json:"with"`
	Ratio    Figures   `json:"ratio"` // with / without, latencies and throughput
	Flood    Stat      `json:"flood_sent_per_s"`
	Accepted Stat      `json:"flood_accepted_per_s"`
}

func medianFigures(rs []*Result) Figures {
	pick := func(f func(*Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return statOf(v).Median
	}
	f := Figures{Runs: len(rs),
		P50ms: pick(func(r *Result) float64 { return r.P50ms }), P90ms: pick(func(r *Result) float64 { return r.P90ms }),
		P99ms: pick(func(r *Result) float64 { return r.P99ms }), P999ms: pick(func(r *Result) float64 { return r.P999ms }),
		MaxMs: pick(func(r *Result) float64 { return r.MaxMs }), ThroughputPerS: pick(func(r *Result) float64 { return r.ThroughputPerS }),
	}
	for _, r := range rs {
		f.Lost += r.Lost
		f.LateSends += r.LateSends
		if r.GenLimited {
			f.GenLimited++
		}
	}
	return f
}

// Fairness runs the scenario.
func Fairness(ctx context.Context, o FairnessOptions) (*FairnessResult, error) {
	if o.Base.Scenario == "" {
		o.Base.Scenario = "echo"
	}
	if o.Base.Scenario != "echo" {
		return nil, fmt.Errorf("loadtest: fairness runs echo, not %q", o.Base.Scenario)
	}
	if o.Repeat == 0 {
		o.Repeat = 3
	}
	if o.Repeat < 1 || o.Repeat > 100 {
		return nil, fmt.Errorf("loadtest: fairness: --repeat %d: want 1..100", o.Repeat)
	}
	if o.Pause == 0 {
		o.Pause = time.Second
	}
	flood := o.Base.Flood
	if flood == 0 {
		flood = 1
	}
	res := &FairnessResult{Scenario: "fairness"}
	var without, with []*Result
	var sent, acc []float64
	for rep := 1; rep <= o.Repeat; rep++ {
		for _, withFlood := range []bool{false, true} {
			step := o.Base
			step.Flood, step.Label = 0, "without"
			if withFlood {
				step.Flood, step.Label = flood, "with"
			}
			load, err := WaitLoad(ctx, o.MaxLoad, o.LoadWait)
			if err != nil {
				return res, err
			}
			if o.Log != nil {
				fmt.Fprintf(o.Log, "== %s.%d (load average %.2f)\n", step.Label, rep, load)
			}
			r, err := Run(ctx, step)
			if err != nil && r == nil {
				return res, err
			}
			res.Runs = append(res.Runs, r)
			if o.Log != nil {
				fmt.Fprintln(o.Log, indent(r.Summary()))
			}
			if o.OutDir != "" {
				base := filepath.Join(o.OutDir, step.Label+"."+strconv.Itoa(rep))
				if werr := r.WriteJSON(base + ".json"); werr != nil {
					return res, werr
				}
				if werr := r.WriteHgrm(base + ".hgrm"); werr != nil {
					return res, werr
				}
			}
			if err != nil {
				return res, err
			}
			if withFlood {
				with = append(with, r)
				if r.Flood != nil {
					sent = append(sent, r.Flood.SentPerS)
					acc = append(acc, r.Flood.AcceptedPerS)
				}
			} else {
				without = append(without, r)
			}
			select {
			case <-time.After(o.Pause):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	res.Without, res.With = medianFigures(without), medianFigures(with)
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	res.Ratio = Figures{
		P50ms: ratio(res.With.P50ms, res.Without.P50ms), P90ms: ratio(res.With.P90ms, res.Without.P90ms),
		P99ms: ratio(res.With.P99ms, res.Without.P99ms), P999ms: ratio(res.With.P999ms, res.Without.P999ms),
		MaxMs: ratio(res.With.MaxMs, res.Without.MaxMs), ThroughputPerS: ratio(res.With.ThroughputPerS, res.Without.ThroughputPerS),
	}
	res.Flood, res.Accepted = statOf(sent), statOf(acc)
	return res, nil
}

func indent(s string) string { return "   " + strings.ReplaceAll(s, "\n", "\n   ") }

// Table is the result as a markdown table.
func (r *FairnessResult) Table() string {
	var b strings.Builder
	b.WriteString("| well-behaved clients | runs | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | delivered msgs/s | lost | gen limited |\n|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, f Figures) {
		fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f | %d | %d/%d |\n", name, f.Runs, f.P50ms, f.P90ms, f.P99ms, f.P999ms, f.MaxMs, f.ThroughputPerS, f.Lost, f.GenLimited, f.Runs)
	}
	row("without the flooder", r.Without)
	row("with the flooder", r.With)
	fmt.Fprintf(&b, "| ratio with / without | | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | | |\n", r.Ratio.P50ms, r.Ratio.P90ms, r.Ratio.P99ms, r.Ratio.P999ms, r.Ratio.MaxMs, r.Ratio.ThroughputPerS)
	b.WriteString("\nFlooder per run (own room): sent / accepted / rate_limited (engine's rate_limited, admin)\n\n")
	for _, run := range r.Runs {
		if run == nil || run.Flood == nil {
			continue
		}
		f := run.Flood
		eng := "-"
		if run.Engine != nil {
			eng = strconv.FormatUint(run.Engine.RateLimited, 10)
		}
		fmt.Fprintf(&b, "- %d / %d / %d (%s) in %.1f s: %.0f sent/s, %.0f accepted/s; final: %v\n", f.Sent, f.Accepted, f.RateLimited, eng, f.Seconds, f.SentPerS, f.AcceptedPerS, f.Exact)
	}
	return b.String()
}

// LoadAverage reads the 1-minute load average.
func LoadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("loadtest: /proc/loadavg: %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// WaitLoad waits until the 1-minute load average is below limit (0: does
// not wait), at most wait (default 10m), and returns the last reading.
// Waiting longer is not an error: the reading goes into the log.
func WaitLoad(ctx context.Context, limit float64, wait time.Duration) (float64, error) {
	load, err := LoadAverage()
	if limit <= 0 || err != nil {
		return load, nil
	}
	if wait == 0 {
		wait = 10 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for load >= limit && time.Now().Before(deadline) {
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return load, ctx.Err()
		}
		load, _ = LoadAverage()
	}
	return load, nil
}

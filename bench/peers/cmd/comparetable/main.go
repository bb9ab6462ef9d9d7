// Command comparetable reads the streamload JSON results that bench/compare.sh
// collected in one folder, named SERVER.SCENARIO.REPEAT.json, takes per
// (server, scenario) the median of each figure across repeats, and writes a
// markdown table of absolute figures and a table of streamd/peer ratios to
// DIR/table.md and stdout.
//
//	go run ./cmd/comparetable [-servers streamd,gorilla,...] [-scenarios echo_1k,...] DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// result is the part of streamload's JSON result the tables use.
type result struct {
	Scenario       string  `json:"scenario"`
	Server         string  `json:"server"`
	Conns          int     `json:"conns"`
	Subscribers    int     `json:"subscribers"`
	Publishers     int     `json:"publishers"`
	Rate           float64 `json:"rate"`
	DurationS      float64 `json:"duration_s"`
	Sent           float64 `json:"sent"`
	Received       float64 `json:"received"`
	Lost           float64 `json:"lost"`
	ThroughputPerS float64 `json:"throughput_per_s"`
	P50ms          float64 `json:"p50_ms"`
	P90ms          float64 `json:"p90_ms"`
	P99ms          float64 `json:"p99_ms"`
	P999ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
	ServerCPUs     float64 `json:"server_cpu_s"`
	ServerPeakRSS  float64 `json:"server_peak_rss_kib"`
	GenCPUCores    float64 `json:"gen_cpu_cores"`
	GenLimited     bool    `json:"gen_limited"`
}

type key struct{ server, scenario string }

func median(runs []result, f func(result) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// order lists names in the order given, then any others found, sorted.
func order(given string, found map[string]bool) []string {
	var out []string
	for _, s := range strings.Split(given, ",") {
		if s = strings.TrimSpace(s); s != "" && found[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	var rest []string
	for s := range found {
		if !slices.Contains(out, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func main() {
	servers := flag.String("servers", "streamd,gorilla,nbio,gnet,centrifuge", "row order of servers")
	scenarios := flag.String("scenarios", "echo_1k,echo_10k,fanout_10k,fanout_ceiling", "order of scenarios")
	base := flag.String("base", "streamd", "server the ratio table compares with the others")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: comparetable [-servers a,b] [-scenarios x,y] DIR")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	runs, foundSrv, foundScn, err := load(dir)
	if err != nil {
		fatal(err)
	}
	srvOrder, scnOrder := order(*servers, foundSrv), order(*scenarios, foundScn)

	var sb strings.Builder
	write(&sb, dir, runs, srvOrder, scnOrder, *base)
	out := sb.String()
	fmt.Print(out)
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(out), 0o644); err != nil {
		fatal(err)
	}
}

// load reads DIR/SERVER.SCENARIO.REPEAT.json; other files are skipped.
func load(dir string) (runs map[key][]result, servers, scenarios map[string]bool, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, nil, err
	}
	runs, servers, scenarios = map[key][]result{}, map[string]bool{}, map[string]bool{}
	for _, f := range files {
		parts := strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".json"), ".", 3)
		if len(parts) != 3 {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, nil, err
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(os.Stderr, "comparetable: skipping %s: %v\n", f, err)
			continue
		}
		k := key{parts[0], parts[1]}
		runs[k] = append(runs[k], r)
		servers[k.server], scenarios[k.scenario] = true, true
	}
	if len(runs) == 0 {
		return nil, nil, nil, fmt.Errorf("no SERVER.SCENARIO.REPEAT.json results in %s", dir)
	}
	return runs, servers, scenarios, nil
}

func write(w io.Writer, dir string, runs map[key][]result, srvOrder, scnOrder []string, base string) {
	fmt.Fprintf(w, "# Side-by-side results: %s\n\n", filepath.Base(filepath.Clean(dir)))
	fmt.Fprintln(w, "Medians across repeats of each figure separately. Latency from each message's scheduled send time (open loop).")
	fmt.Fprintln(w)
	for _, scn := range scnOrder {
		var some result
		for _, srv := range srvOrder {
			if rs := runs[key{srv, scn}]; len(rs) > 0 {
				some = rs[0]
				break
			}
		}
		desc := fmt.Sprintf("%s, %d conns", some.Scenario, some.Conns)
		if some.Subscribers > 0 {
			desc = fmt.Sprintf("%s, %d subscribers, %d publishers", some.Scenario, some.Subscribers, some.Publishers)
		}
		fmt.Fprintf(w, "## %s (%s, %.0f msgs/s sent, %.0f s)\n\n", scn, desc, some.Rate, some.DurationS)
		fmt.Fprintln(w, "| server | runs | delivered msgs/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU s | peak RSS MiB | lost | gen limited |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, srv := range srvOrder {
			rs := runs[key{srv, scn}]
			if len(rs) == 0 {
				continue
			}
			limited := 0
			for _, r := range rs {
				if r.GenLimited {
					limited++
				}
			}
			m := func(f func(result) float64) float64 { return median(rs, f) }
			fmt.Fprintf(w, "| %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.0f | %d/%d |\n", srv, len(rs),
				m(func(r result) float64 { return r.ThroughputPerS }),
				m(func(r result) float64 { return r.P50ms }),
				m(func(r result) float64 { return r.P99ms }),
				m(func(r result) float64 { return r.P999ms }),
				m(func(r result) float64 { return r.MaxMs }),
				m(func(r result) float64 { return r.ServerCPUs }),
				m(func(r result) float64 { return r.ServerPeakRSS })/1024,
				m(func(r result) float64 { return r.Lost }),
				limited, len(rs))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "## Ratios %s / peer (medians)\n\n", base)
	fmt.Fprintf(w, "Throughput ratio > 1: %s delivered more. p99 ratio < 1: %s's p99 was lower.\n\n", base, base)
	peers := slices.DeleteFunc(slices.Clone(srvOrder), func(s string) bool { return s == base })
	fmt.Fprint(w, "| scenario |")
	for _, p := range peers {
		fmt.Fprintf(w, " vs %s: msgs/s | vs %s: p99 |", p, p)
	}
	fmt.Fprint(w, "\n|---|")
	for range peers {
		fmt.Fprint(w, "---|---|")
	}
	fmt.Fprintln(w)
	for _, scn := range scnOrder {
		b := runs[key{base, scn}]
		fmt.Fprintf(w, "| %s |", scn)
		for _, p := range peers {
			pr := runs[key{p, scn}]
			if len(b) == 0 || len(pr) == 0 {
				fmt.Fprint(w, " — | — |")
				continue
			}
			tp := func(r result) float64 { return r.ThroughputPerS }
			p99 := func(r result) float64 { return r.P99ms }
			fmt.Fprintf(w, " %s | %s |", ratio(median(b, tp), median(pr, tp)), ratio(median(b, p99), median(pr, p99)))
		}
		fmt.Fprintln(w)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	if r := a / b; r < 0.1 && r > 0 {
		return fmt.Sprintf("%.2g×", r) // 0.0025×: two significant digits, not 0.00×
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "comparetable:", err)
	os.Exit(1)
}

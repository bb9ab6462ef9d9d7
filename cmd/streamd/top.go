package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"streamd/engine"
)

// topMain is `streamd top`: it polls a running engine's admin
// /stats/metrics and redraws a text view of it, for servers without a
// browser.
func topMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "127.0.0.1:9090", "admin address of the engine (HOST:PORT)")
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	once := fs.Bool("once", false, "print one view and exit (no screen clearing)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintln(stderr, "streamd top: --interval must be at least 100ms")
		return exitUsage
	}
	url := "http://" + *admin + "/stats/metrics"
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		snap, err := fetchSnapshot(ctx, client, url)
		if err != nil {
			fmt.Fprintf(stderr, "streamd top: %v (is streamd running with --admin %s?)\n", err, *admin)
			if *once {
				return exitFail
			}
		} else {
			if !*once {
				fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear
			}
			fmt.Fprint(stdout, renderTop(snap, *admin))
			if *once {
				return exitOK
			}
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(*interval):
		}
	}
}

func fetchSnapshot(ctx context.Context, c *http.Client, url string) (*engine.MetricsSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	setAdminToken(req)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	var snap engine.MetricsSnapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	return &snap, nil
}

// renderTop formats a snapshot as the top view.
func renderTop(s *engine.MetricsSnapshot, admin string) string {
	var b strings.Builder
	at := time.UnixMilli(s.Time).Format("15:04:05")
	fmt.Fprintf(&b, "streamd top — %s — %s — up %s\n\n", admin, at, (time.Duration(s.UptimeS) * time.Second).String())
	fmt.Fprintf(&b, "connections %8d open  %8.1f opened/s   rooms %d   members %d\n",
		s.Connections.Open, s.Connections.OpenedPerS, s.Rooms, s.Members)
	fmt.Fprintf(&b, "messages    %10.0f in/s %10.0f out/s   (1 min: %.0f in/s, %.0f out/s)\n",
		s.Messages.InPerS, s.Messages.OutPerS, s.Messages.InPerS1m, s.Messages.OutPerS1m)
	fmt.Fprintf(&b, "bytes       %10s in/s %10s out/s   outbound queued %s   ring fill %.0f%%\n",
		human(s.Bytes.InPerS), human(s.Bytes.OutPerS), human(float64(s.Queues.OutboundBytes)), 100*s.Queues.RingFillMax)
	fmt.Fprintf(&b, "runtime     %d goroutines   heap %s   rss %s   gc pause p99 %.2f ms\n\n",
		s.Runtime.Goroutines, human(float64(s.Runtime.HeapBytes)), human(float64(s.Runtime.RSSBytes)), s.Runtime.GCPauseP99Ms)
	if len(s.Latency) > 0 {
		fmt.Fprintf(&b, "%-8s %10s %9s %9s %9s %9s %9s\n", "latency", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
		for _, st := range engine.Stages {
			l, ok := s.Latency[st]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "%-8s %10d %9.3f %9.3f %9.3f %9.3f %9.3f\n", st, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
		}
		b.WriteByte('\n')
	}
	if len(s.Pipelines) > 0 {
		fmt.Fprintf(&b, "%-24s %-14s %10s %10s %8s %8s %9s\n", "pipeline/node", "kind", "in/s", "out/s", "dropped", "errors", "p99 ms")
		for _, n := range s.Pipelines {
			fmt.Fprintf(&b, "%-24s %-14s %10.0f %10.0f %8d %8d %9.3f\n", n.Pipeline+"/"+n.Node, n.Kind, n.InPerS, n.OutPerS, n.Dropped, n.Errors, n.P99Ms)
		}
		b.WriteByte('\n')
	}
	var errs []string
	for code, n := range s.Errors {
		errs = append(errs, fmt.Sprintf("%s %d", code, n))
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		fmt.Fprintf(&b, "errors: %s\n", strings.Join(errs, ", "))
	}
	if len(s.Alerts) == 0 {
		b.WriteString("alerts: none firing\n")
	}
	for _, a := range s.Alerts {
		fmt.Fprintf(&b, "ALERT %-8s %s: %s (value %.3g)", strings.ToUpper(a.Severity), a.Name, a.Message, a.Value)
		if a.Action != "" {
			fmt.Fprintf(&b, " → %s", a.Action)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func human(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The engine's own counters, read from its admin port (--admin
// HOST:PORT, loopback only) before and after a run: GET /stats (the
// engine's Stats as JSON) and GET /metrics (Prometheus text, for the
// errors by code: streamd_errors_by_code_total{code="rate_limited"}).

// EngineCounters are the engine counters a run reports.
type EngineCounters struct {
	Received                uint64 `json:"received"`
	Published               uint64 `json:"published"`
	Delivered               uint64 `json:"delivered"`
	Errors                  uint64 `json:"errors"`
	SlowConsumerDrops       int64  `json:"slow_consumer_drops"`
	IdleTimeouts            int64  `json:"idle_timeouts"`
	BackpressureDropped     uint64 `json:"backpressure_dropped"`
	BackpressureDisconnects uint64 `json:"backpressure_disconnects"`
	GapNotices              uint64 `json:"gap_notices"`
	FlowPauses              uint64 `json:"flow_pauses"`
	RateLimited             uint64 `json:"rate_limited"` // error answers and silent drops with code rate_limited (from /metrics)
}

// Sub returns c − o, field by field.
func (c EngineCounters) Sub(o EngineCounters) EngineCounters {
	return EngineCounters{
		Received: c.Received - o.Received, Published: c.Published - o.Published, Delivered: c.Delivered - o.Delivered,
		Errors: c.Errors - o.Errors, SlowConsumerDrops: c.SlowConsumerDrops - o.SlowConsumerDrops, IdleTimeouts: c.IdleTimeouts - o.IdleTimeouts,
		BackpressureDropped: c.BackpressureDropped - o.BackpressureDropped, BackpressureDisconnects: c.BackpressureDisconnects - o.BackpressureDisconnects,
		GapNotices: c.GapNotices - o.GapNotices, FlowPauses: c.FlowPauses - o.FlowPauses, RateLimited: c.RateLimited - o.RateLimited,
	}
}

// engineDelta reads the engine's counters from the admin server at addr
// now and returns a func that reads them again and gives the difference
// (what the run did). With addr "", neither reads anything and the
// difference is nil.
func engineDelta(ctx context.Context, addr string) (func() (*EngineCounters, error), error) {
	if addr == "" {
		return func() (*EngineCounters, error) { return nil, nil }, nil
	}
	e0, err := ReadEngineCounters(ctx, addr)
	if err != nil {
		return nil, err
	}
	return func() (*EngineCounters, error) {
		e1, err := ReadEngineCounters(ctx, addr)
		if err != nil {
			return nil, err
		}
		d := e1.Sub(e0)
		return &d, nil
	}, nil
}

// checkLoopback refuses an address that is not on loopback.
func checkLoopback(flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loadtest: %s %q: %v", flag, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("loadtest: %s %q is not a loopback address", flag, addr)
	}
	return nil
}

// ReadEngineCounters reads the counters from the admin server at addr.
func ReadEngineCounters(ctx context.Context, addr string) (EngineCounters, error) {
	var c EngineCounters
	if err := checkLoopback("--admin", addr); err != nil {
		return c, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("loadtest: admin %s: %s", path, resp.Status)
		}
		return resp, nil
	}
	resp, err := get("/stats")
	if err != nil {
		return c, err
	}
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil {
		return c, fmt.Errorf("loadtest: admin /stats: %v", err)
	}
	resp, err = get("/metrics")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	c.RateLimited, err = promCounter(bufio.NewScanner(resp.Body), `streamd_errors_by_code_total{code="rate_limited"}`)
	return c, err
}

// promCounter finds series (name and labels exactly) in Prometheus text
// and returns its value; absent, 0.
func promCounter(sc *bufio.Scanner, series string) (uint64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, series+" ") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[len(series):]), 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: admin /metrics: %q: %v", line, err)
		}
		return uint64(v), nil
	}
	return 0, sc.Err()
}

// ReadEngineHeap reads the engine's heap in use (bytes) from the admin
// server's latest metrics snapshot (/stats/metrics, taken every
// metrics_interval).
func ReadEngineHeap(ctx context.Context, addr string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadtest: admin /stats/metrics: %s", resp.Status)
	}
	var m struct {
		Runtime struct {
			HeapBytes int64 `json:"heap_bytes"`
		} `json:"runtime"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, err
	}
	return m.Runtime.HeapBytes, nil
}

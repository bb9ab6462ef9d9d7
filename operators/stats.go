package operators

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Stats are one operator's counters and its latency histogram.
//
// The counters are written by the flow's goroutine only (once per batch,
// not per event) and read from anywhere. The histogram records the time
// an operator spent on each batch it processed, divided by the batch's
// length (so it is per event), excluding the time its downstream spent.
// The flow's goroutine records into an active histogram without a lock and
// publishes it every StatsInterval (and at Close); Snapshot reads the
// published one under a mutex that the hot path never takes.
type Stats struct {
	Name string // node name
	Kind string // operator kind: "filter", "aggregate", …

	in, out, dropped, errors, late atomic.Uint64

	active *hdrhistogram.Histogram // flow goroutine only

	mu        sync.Mutex
	published *hdrhistogram.Histogram

	cmu      sync.Mutex
	counters map[string]*atomic.Uint64 // an op's own counters (Counter)
	gauges   map[string]*atomic.Int64  // an op's own gauges (Gauge); under cmu
}

// Latency histograms cover 1 ns … 60 s with 3 significant digits.
const (
	histMin = 1
	histMax = int64(60 * time.Second)
)

// NewStats returns empty stats for an operator.
func NewStats(name, kind string) *Stats {
	return &Stats{
		Name: name, Kind: kind,
		active:    hdrhistogram.New(histMin, histMax, 3),
		published: hdrhistogram.New(histMin, histMax, 3),
	}
}

// In counts n events received.
func (s *Stats) In(n int) { s.in.Add(uint64(n)) }

// Out counts n events emitted.
func (s *Stats) Out(n int) { s.out.Add(uint64(n)) }

// Dropped counts n events the operator discarded on purpose (a filter's
// rejects, a throttle's extras, a dedup's repeats).
func (s *Stats) Dropped(n int) { s.dropped.Add(uint64(n)) }

// Errors counts n failed events.
func (s *Stats) Errors(n int) { s.errors.Add(uint64(n)) }

// Late counts n events that arrived after their window closed.
func (s *Stats) Late(n int) { s.late.Add(uint64(n)) }

// Counter returns the operator's own counter called name (tokens used,
// cache hits, retries, …), made on first use; it appears in Snapshot's
// Counters. Safe from any goroutine; keep the pointer rather than calling
// Counter per event.
func (s *Stats) Counter(name string) *atomic.Uint64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c := s.counters[name]
	if c == nil {
		if s.counters == nil {
			s.counters = make(map[string]*atomic.Uint64)
		}
		c = new(atomic.Uint64)
		s.counters[name] = c
	}
	return c
}

// Gauge returns the operator's own gauge called name (a value that goes
// up and down: a concurrent map's current workers, its queue), made on
// first use; it appears in Snapshot's Gauges. Safe from any goroutine;
// keep the pointer rather than calling Gauge per event.
func (s *Stats) Gauge(name string) *atomic.Int64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	g := s.gauges[name]
	if g == nil {
		if s.gauges == nil {
			s.gauges = make(map[string]*atomic.Int64)
		}
		g = new(atomic.Int64)
		s.gauges[name] = g
	}
	return g
}

// Observe records that processing n events took the time since start.
// Flow goroutine only.
func (s *Stats) Observe(start time.Time, n int) {
	if n <= 0 {
		return
	}
	d := int64(time.Since(start)) / int64(n)
	if d < histMin {
		d = histMin
	}
	_ = s.active.RecordValue(min(d, histMax))
}

// publish moves the active histogram's counts into the published one.
// Flow goroutine only.
func (s *Stats) publish() {
	if s.active.TotalCount() == 0 {
		return
	}
	s.mu.Lock()
	s.published.Merge(s.active)
	s.mu.Unlock()
	s.active.Reset()
}

// StatsSnapshot is a copy of an operator's stats.
type StatsSnapshot struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	In      uint64 `json:"in"`
	Out     uint64 `json:"out"`
	Dropped uint64 `json:"dropped"`
	Errors  uint64 `json:"errors"`
	Late    uint64 `json:"late"`
	// Latency per event, in nanoseconds, over the operator's lifetime up
	// to the last publish.
	Count int64 `json:"latency_count"`
	P50   int64 `json:"latency_p50_ns"`
	P99   int64 `json:"latency_p99_ns"`
	P999  int64 `json:"latency_p999_ns"`
	Max   int64 `json:"latency_max_ns"`
	// Counters are the operator's own counters (Stats.Counter), if any.
	Counters map[string]uint64 `json:"counters,omitempty"`
	// Gauges are the operator's own gauges (Stats.Gauge), if any: values
	// now, not totals (an adaptive concurrent map's "workers").
	Gauges map[string]int64 `json:"gauges,omitempty"`
}

// Snapshot copies the counters and the published histogram's quantiles.
// Safe from any goroutine.
func (s *Stats) Snapshot() StatsSnapshot {
	snap := StatsSnapshot{
		Name: s.Name, Kind: s.Kind,
		In: s.in.Load(), Out: s.out.Load(), Dropped: s.dropped.Load(),
		Errors: s.errors.Load(), Late: s.late.Load(),
	}
	s.cmu.Lock()
	if len(s.counters) > 0 {
		snap.Counters = make(map[string]uint64, len(s.counters))
		for k, c := range s.counters {
			snap.Counters[k] = c.Load()
		}
	}
	if len(s.gauges) > 0 {
		snap.Gauges = make(map[string]int64, len(s.gauges))
		for k, g := range s.gauges {
			snap.Gauges[k] = g.Load()
		}
	}
	s.cmu.Unlock()
	s.mu.Lock()
	h := s.published
	snap.Count = h.TotalCount()
	if snap.Count > 0 {
		snap.P50 = h.ValueAtQuantile(50)
		snap.P99 = h.ValueAtQuantile(99)
		snap.P999 = h.ValueAtQuantile(99.9)
		snap.Max = h.Max()
	}
	s.mu.Unlock()
	return snap
}

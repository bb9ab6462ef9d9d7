package operators

import (
	"strconv"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// chainTick is the event of the in-process chain benchmarks.
type chainTick struct {
	Sym      string
	Price    float64
	Qty      float64
	Score    float64
	Notional float64
}

var chainSink int

// buildChain builds the 5-stage chain of the pipelines issue: filter →
// map → router → aggregate → sink (the router's "keep" route feeds the
// aggregate; the rest leaves on its unconnected default route).
func buildChain(b *testing.B, clk *FakeClock) (*Flow, *Source[chainTick]) {
	f := NewFlow(FlowOptions{Clock: clk})
	src := NewSource[chainTick](f, "ticks")
	s := src.Stream().
		Filter(func(t chainTick) bool { return t.Score > 0.1 }).
		Map(func(t chainTick) chainTick { t.Notional = t.Price * t.Qty; return t })
	routes := Route(s, RouterOptions[chainTick]{Rules: []RouteRule[chainTick]{
		{Name: "keep", Match: func(t chainTick) bool { return t.Notional > 0 }},
	}})
	res, _, err := Aggregate(routes.Get("keep"), AggregateOptions[chainTick, string]{
		Window: Tumbling(10 * time.Millisecond),
		Key:    func(t chainTick) string { return t.Sym },
		Value:  func(t chainTick) float64 { return t.Notional },
		Fns:    []AggFn{AggAvg(), AggMax()},
	})
	if err != nil {
		b.Fatal(err)
	}
	res.SubscribeBatch(func(rs []WindowResult[string]) { chainSink += len(rs) })
	if err := f.Open(); err != nil {
		b.Fatal(err)
	}
	return f, src
}

// BenchmarkChain5 pushes batches through the 5-stage chain on one
// goroutine (one core). The fake clock moves 1 ms per 1,000 events so the
// 10 ms windows keep closing (100 keys, so ~100 results per window). It
// reports events/s and the added latency of a batch (the time Push takes
// to carry it through every stage: an upper bound for each event in it).
func BenchmarkChain5(b *testing.B) {
	for _, batch := range []int{1, 16, 64, 256} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			clk := NewFakeClock(time.Unix(1_700_000_000, 0))
			f, src := buildChain(b, clk)
			syms := make([]string, 100)
			for i := range syms {
				syms[i] = "SYM" + strconv.Itoa(i)
			}
			evs := make([]chainTick, 4096)
			for i := range evs {
				evs[i] = chainTick{Sym: syms[i%len(syms)], Price: float64(100 + i%7), Qty: float64(1 + i%5), Score: float64(i%10) / 10}
			}
			hist := hdrhistogram.New(1, int64(time.Second), 3)
			// warm up: every key has state, buffers are grown
			for i := 0; i+batch <= len(evs); i += batch {
				src.Push(evs[i : i+batch])
			}
			b.ReportAllocs()
			b.ResetTimer()
			sent, off := 0, 0
			for sent < b.N {
				if off+batch > len(evs) {
					off = 0
				}
				t0 := time.Now()
				src.Push(evs[off : off+batch])
				_ = hist.RecordValue(int64(time.Since(t0)))
				off += batch
				sent += batch
				if sent%1000 < batch {
					clk.Add(time.Millisecond)
					f.Advance()
				}
			}
			b.StopTimer()
			el := b.Elapsed().Seconds()
			b.ReportMetric(float64(sent)/el, "events/s")
			b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50-ns/batch")
			b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99-ns/batch")
			b.ReportMetric(float64(hist.ValueAtQuantile(99.9)), "p99.9-ns/batch")
		})
	}
}

// BenchmarkChainStateless is the stateless part alone (filter → map →
// router → sink): 0 allocs/op is the hot-path rule.
func BenchmarkChainStateless(b *testing.B) {
	f := NewFlow(FlowOptions{})
	src := NewSource[chainTick](f, "ticks")
	s := src.Stream().
		Filter(func(t chainTick) bool { return t.Score > 0.1 }).
		Map(func(t chainTick) chainTick { t.Notional = t.Price * t.Qty; return t })
	routes := Route(s, RouterOptions[chainTick]{Rules: []RouteRule[chainTick]{
		{Name: "keep", Match: func(t chainTick) bool { return t.Notional > 0 }},
	}})
	routes.Get("keep").SubscribeBatch(func(b []chainTick) { chainSink += len(b) })
	if err := f.Open(); err != nil {
		b.Fatal(err)
	}
	evs := make([]chainTick, 64)
	for i := range evs {
		evs[i] = chainTick{Sym: "S", Price: 1, Qty: 1, Score: float64(i%10) / 10}
	}
	src.Push(evs)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(evs) {
		src.Push(evs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

package operators

import (
	"fmt"
	"testing"
	"time"
)

// aggSink keeps the benchmarks' results alive.
var aggSink float64

// aggBench runs b.N events through an aggregator on processing time: 100
// keys round-robin, batches of 100 events (one per key), the fake clock
// moving step per batch and Advance called after each batch. With burst
// > 0, a key sends in burst rounds out of 2·burst (keys take turns), so
// its sessions end. One op is one event.
func aggBench(b *testing.B, w WindowSpec, fns []AggFn, step time.Duration, burst int) {
	clk := NewFakeClock(time.Unix(0, 0))
	f := NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour})
	agg, err := NewAggregator("agg", AggregateOptions[aggEv, string]{
		Window: w,
		Key:    func(e aggEv) string { return e.Key },
		Value:  func(e aggEv) float64 { return e.V },
		Fns:    fns,
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Add(agg)
	results := 0
	agg.Out.Connect(InletFunc[WindowResult[string]](func(rs []WindowResult[string]) {
		results += len(rs)
		for i := range rs {
			aggSink += rs[i].Value
		}
	}))
	if err := f.Open(); err != nil {
		b.Fatal(err)
	}
	const keys = 100
	batch := make([]aggEv, keys)
	for i := range batch {
		batch[i] = aggEv{Key: fmt.Sprintf("key-%02d", i)}
	}
	all := append([]aggEv(nil), batch...)
	push := func(n int, round int) {
		if burst > 0 {
			batch = batch[:0]
			for i := range all {
				if (round+i)/burst%2 == 0 {
					batch = append(batch, aggEv{Key: all[i].Key})
				}
			}
			n = min(n, len(batch))
		}
		for i := range batch[:n] {
			batch[i].V = float64((round*7 + i) % 1000)
		}
		agg.Push(batch[:n])
		clk.Add(step)
		f.Advance()
	}
	// Warm up over two windows, so rings, maps and buffers have grown.
	warm := int(2*w.Size/step) + 2
	for r := range warm {
		push(keys, r)
	}
	results = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i, r := 0, 0; i < b.N; r++ {
		n := min(keys, b.N-i)
		push(n, r)
		if burst > 0 {
			n = min(n, len(batch))
		}
		i += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(results)/float64(b.N), "results/event")
}

// BenchmarkSlidingWindow measures a sliding window's cost per event as the
// slide shrinks, over 10s windows and 100 keys, each key getting one event
// every 10ms: at slide=size/100 (100ms) a key gets 10 events per slide,
// and each result sums up 1,000 events. An event updates one pane whatever
// the slide, and a window costs O(1) merges amortised (two stacks), so the
// cost per event must stay flat, within 2×, from size/2 to size/100 (the
// acceptance criterion); what grows is only the number of results.
func BenchmarkSlidingWindow(b *testing.B) {
	benchSliding(b, 10*time.Millisecond)
}

// BenchmarkSlidingWindowSparse is BenchmarkSlidingWindow with one event
// per key every 100ms: at slide=size/100 every event makes a result, and
// the cost per event is the cost of a result.
func BenchmarkSlidingWindowSparse(b *testing.B) {
	benchSliding(b, 100*time.Millisecond)
}

func benchSliding(b *testing.B, step time.Duration) {
	const size = 10 * time.Second
	fns := []AggFn{AggAvg(), AggMin(), AggMax()}
	for _, div := range []int{2, 10, 100} {
		b.Run(fmt.Sprintf("slide=size/%d", div), func(b *testing.B) {
			aggBench(b, Sliding(size, size/time.Duration(div)), fns, step, 0)
		})
	}
}

// BenchmarkAggregateTumbling is avg over 100 keys in tumbling windows:
// once warm, nothing is allocated per event.
func BenchmarkAggregateTumbling(b *testing.B) {
	for _, step := range []time.Duration{time.Millisecond, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("fn=avg/keys=100/step=%s", step), func(b *testing.B) {
			aggBench(b, Tumbling(10*time.Second), []AggFn{AggAvg()}, step, 0)
		})
	}
}

// BenchmarkAggregateFns compares the functions' costs on one tumbling
// window; percentiles keep and sort every value.
func BenchmarkAggregateFns(b *testing.B) {
	custom := AggCustom("spread", func() Accumulator { return new(spreadAcc) })
	for _, c := range []struct {
		name string
		fns  []AggFn
	}{
		{"count", []AggFn{AggCount()}},
		{"avg,min,max,sum", []AggFn{AggAvg(), AggMin(), AggMax(), AggSum()}},
		{"p50,p99", []AggFn{AggPercentile(50), AggPercentile(99)}},
		{"custom", []AggFn{custom}},
	} {
		b.Run("fns="+c.name, func(b *testing.B) {
			aggBench(b, Tumbling(10*time.Second), c.fns, 10*time.Millisecond, 0)
		})
	}
}

// BenchmarkAggregateSession: 100 keys taking turns, each sending 100
// events 10ms apart, then nothing for 1s, so each session has 100 events.
func BenchmarkAggregateSession(b *testing.B) {
	b.Run("gap=50ms/events=100", func(b *testing.B) {
		w := Session(50 * time.Millisecond)
		w.Size = 10 * time.Second // warm-up length for aggBench
		aggBench(b, w, []AggFn{AggAvg()}, 10*time.Millisecond, 100)
	})
}

// BenchmarkWindower groups events 100 at a time into new slices.
func BenchmarkWindower(b *testing.B) {
	f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0)), StatsInterval: time.Hour})
	src := NewSource[int](f, "n")
	w, err := Window(src.Stream(), WindowOptions{Count: 100})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	w.SubscribeBatch(func(ws [][]int) { n += len(ws) })
	_ = f.Open()
	batch := make([]int, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		src.Push(batch[:min(len(batch), b.N-i)])
	}
	b.StopTimer()
	aggSink += float64(n)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

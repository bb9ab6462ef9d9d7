package operators

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkConcurrentMapAdaptive is BenchmarkConcurrentMap's hand-off
// and hand-back of batches to two workers running a trivial fn, by a
// fixed pool and by an adaptive one held at the same size (Min = Max =
// 2, so it samples but never resizes): the difference is what the
// controller costs per event. The flow is advanced after each batch, so
// the sampling timer fires on the system clock as it would in a pipeline.
func BenchmarkConcurrentMapAdaptive(b *testing.B) {
	const size = 64
	for _, ordered := range []bool{false, true} {
		for _, pool := range []string{"fixed", "adaptive"} {
			b.Run(fmt.Sprintf("ordered=%v/pool=%s", ordered, pool), func(b *testing.B) {
				f := NewFlow(FlowOptions{})
				opts := ConcurrencyOptions{Concurrency: 2, MaxInFlight: 128, Ordered: ordered}
				if pool == "adaptive" {
					opts.Adaptive = &AdaptiveConcurrency{Min: 2, Max: 2}
				}
				o, err := NewConcurrentMap("cm", func(_ context.Context, v int) (int, error) { return v + 1, nil }, opts)
				if err != nil {
					b.Fatal(err)
				}
				o.Out.Connect(InletFunc[int](func(batch []int) { routeBenchSink += len(batch) }))
				_ = f.Add(o)
				_ = f.Open()
				batch := make([]int, size)
				b.ReportAllocs()
				for b.Loop() {
					o.Push(batch)
					o.Flush()
					f.Advance()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
				_ = f.Close()
			})
		}
	}
}

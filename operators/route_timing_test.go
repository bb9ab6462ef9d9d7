package operators

import (
	"context"
	"fmt"
	"testing"
	"unsafe"
)

// routeBenchSink keeps the benchmarks' results alive.
var routeBenchSink int

// routeBenchBatch returns n events whose N spreads over 0..99.
func routeBenchBatch(n int) []rtEvent {
	b := make([]rtEvent, n)
	for i := range b {
		b[i] = rtEvent{Key: "k", N: (i * 37) % 100}
	}
	return b
}

// BenchmarkRouter splits batches over three rules and the default route,
// every port read by a counting inlet. Reports ns/event; allocs/op must be 0.
func BenchmarkRouter(b *testing.B) {
	for _, mode := range []RouteMode{RouteFirst, RouteAll} {
		for _, size := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("mode=%s/batch=%d", mode, size), func(b *testing.B) {
				r, err := NewRouter("r", RouterOptions[rtEvent]{Rules: rtRules(), Mode: mode})
				if err != nil {
					b.Fatal(err)
				}
				count := InletFunc[rtEvent](func(batch []rtEvent) { routeBenchSink += len(batch) })
				for _, name := range []string{"", "high", "mid", "even"} {
					out, _ := r.Route(name)
					out.Connect(count)
				}
				batch := routeBenchBatch(size)
				b.SetBytes(int64(size) * int64(unsafe.Sizeof(rtEvent{})))
				b.ReportAllocs()
				for b.Loop() {
					r.Push(batch)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
			})
		}
	}
}

// BenchmarkFlatMap expands each event into two.
func BenchmarkFlatMap(b *testing.B) {
	const size = 256
	o := NewFlatMap("fm", func(dst []int, v int) []int { return append(dst, v, v+1) })
	o.Out.Connect(InletFunc[int](func(batch []int) { routeBenchSink += len(batch) }))
	batch := make([]int, size)
	b.SetBytes(size * int64(unsafe.Sizeof(0)))
	b.ReportAllocs()
	for b.Loop() {
		o.Push(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
}

// BenchmarkZip pairs a left batch with a right batch.
func BenchmarkZip(b *testing.B) {
	const size = 256
	z, err := NewZip("z", func(a, c int) int { return a + c }, ZipOptions{})
	if err != nil {
		b.Fatal(err)
	}
	z.Out.Connect(InletFunc[int](func(batch []int) { routeBenchSink += len(batch) }))
	batch := make([]int, size)
	b.SetBytes(2 * size * int64(unsafe.Sizeof(0)))
	b.ReportAllocs()
	for b.Loop() {
		z.Left().Push(batch)
		z.Right().Push(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/pair")
}

// BenchmarkConcurrentMap hands batches to two workers running a trivial
// fn and waits for them (Flush): the cost of the hand-off and hand-back.
func BenchmarkConcurrentMap(b *testing.B) {
	const size = 64
	for _, ordered := range []bool{false, true} {
		b.Run(fmt.Sprintf("ordered=%v", ordered), func(b *testing.B) {
			f := NewFlow(FlowOptions{})
			o, err := NewConcurrentMap("cm", func(_ context.Context, v int) (int, error) { return v + 1, nil },
				ConcurrencyOptions{Concurrency: 2, MaxInFlight: 128, Ordered: ordered})
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
				f.Poll()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
			_ = f.Close()
		})
	}
}

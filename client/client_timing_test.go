package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// BenchmarkClientPublish: one Go client against an engine in process on
// loopback. "acked" publishes one message at a time and waits for its ack
// (the round trip, reported as p50/p99 from an HDR histogram);
// "pipelined" has 64 publishes in flight from goroutines (throughput).
func BenchmarkClientPublish(b *testing.B) {
	e := enginetest.Start(b, engine.Config{})
	ctx := context.Background()
	c, err := Dial(ctx, enginetest.URL(e), quietOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("mode=acked", func(b *testing.B) {
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := c.Publish(ctx, "bench", i); err != nil {
				b.Fatal(err)
			}
			_ = h.RecordValue(int64(time.Since(t0)))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
		b.ReportMetric(float64(h.ValueAtQuantile(99))/1e3, "p99-µs")
	})
	b.Run("mode=pipelined", func(b *testing.B) {
		const inflight = 64
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		per := (b.N + inflight - 1) / inflight
		for g := 0; g < inflight; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if _, err := c.Publish(ctx, "bench", i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(per*inflight)/b.Elapsed().Seconds(), "msgs/s")
	})
}

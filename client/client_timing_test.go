package client

import (
	"context"
	"fmt"
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

// BenchmarkClientEvent: one Go client sends events and waits for each
// answer. "reply" is a pipeline that answers with a result at once;
// "checkpoint=10ms" is an exactly-once pipeline whose ack comes after the
// checkpoint holding the event is on disk (a temp dir: fsync included),
// the price of exactly-once. HDR p50/p99 of the round trip.
func BenchmarkClientEvent(b *testing.B) {
	e := enginetest.Start(b, engine.Config{Data: b.TempDir(), Pipelines: mustSpecs(b, `
- name: reply
  input: {stream: r}
  nodes:
    - {name: pass, op: filter, if: "true"}
  output: {reply: true}
- name: counts
  checkpoint: 10ms
  input: {stream: c}
  nodes:
    - {name: agg, op: aggregate, fn: count, window: {tumbling: 1s}}
    - {name: last, op: state, key: "'total'"}
`)})
	ctx := context.Background()
	for _, tc := range []struct{ name, stream, producer string }{{"reply", "r", ""}, {"checkpoint=10ms", "c", "bench"}} {
		b.Run("pipeline="+tc.name, func(b *testing.B) {
			opts := quietOpts()
			if tc.producer != "" { // a new producer per client: pseqs restart at 1
				opts.Producer = fmt.Sprintf("%s-%d", tc.producer, time.Now().UnixNano())
			}
			c, err := Dial(ctx, enginetest.URL(e), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			h := hdrhistogram.New(1, int64(10*time.Second), 3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := c.Event(ctx, tc.stream, map[string]int{"n": i}); err != nil {
					b.Fatal(err)
				}
				_ = h.RecordValue(int64(time.Since(t0)))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
			b.ReportMetric(float64(h.ValueAtQuantile(99))/1e3, "p99-µs")
		})
	}
}

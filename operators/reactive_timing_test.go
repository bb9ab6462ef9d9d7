package operators

import (
	"fmt"
	"testing"
	"time"
)

// rxSink keeps the benchmarks' results alive.
var rxSink int

// rxEvent is the benchmarks' event: a key, as a string and as a number.
type rxEvent struct {
	ID  string
	Key uint64
	V   int
}

// rxBench is a flow on a fake clock, with a source of rxEvent whose
// operator under test ends in a sink that counts.
type rxBench struct {
	clk *FakeClock
	f   *Flow
	src *Source[rxEvent]
	out int
}

func newRxBench(b *testing.B, build func(s *Stream[rxEvent]) *Stream[rxEvent]) *rxBench {
	clk := NewFakeClock(time.Unix(0, 0))
	r := &rxBench{clk: clk, f: NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour})}
	r.src = NewSource[rxEvent](r.f, "src")
	build(r.src.Stream()).SubscribeBatch(func(b []rxEvent) { r.out += len(b) })
	if err := r.f.Open(); err != nil {
		b.Fatal(err)
	}
	return r
}

// run pushes b.N events in batches of batch, from events (cycled), moving
// the clock by step per event and calling Advance after every batch. It
// reports the events dropped per event pushed.
func (r *rxBench) run(b *testing.B, events []rxEvent, batch int, step time.Duration, op Operator) {
	// warm up: grow the buffers, the maps and the timer heap
	r.push(events, batch, step, len(events)*4)
	st0 := op.Stats().Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	r.push(events, batch, step, b.N)
	b.StopTimer()
	st := op.Stats().Snapshot()
	b.ReportMetric(float64(st.Dropped-st0.Dropped)/float64(b.N), "drops/op")
	rxSink += r.out
}

func (r *rxBench) push(events []rxEvent, batch int, step time.Duration, n int) {
	j := 0
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		if j+k > len(events) {
			j = 0
		}
		r.src.Push(events[j : j+k])
		j += k
		r.clk.Add(time.Duration(k) * step)
		r.f.Advance()
	}
}

// rxEvents returns n events whose keys cycle over keys distinct ones, each
// key twice in a row (so a dedup drops at least every second event).
func rxEvents(n, keys int) []rxEvent {
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = fmt.Sprintf("order-%06d", i)
	}
	ev := make([]rxEvent, n)
	for i := range ev {
		k := (i / 2) % keys
		ev[i] = rxEvent{ID: ids[k], Key: uint64(k), V: i}
	}
	return ev
}

// BenchmarkReactiveDedup: 1024 keys, each twice in a row, one event per
// µs, a 1ms window: a key comes back after 2.048ms, so its first event
// passes and its repeat is dropped (0.5 drops/op), about 500 keys are
// remembered, and the sweep timer runs.
func BenchmarkReactiveDedup(b *testing.B) {
	events := rxEvents(1<<14, 1024)
	for _, key := range []string{"string", "uint64"} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("key=%s/batch=%d", key, batch), func(b *testing.B) {
				var op Operator
				r := newRxBench(b, func(s *Stream[rxEvent]) *Stream[rxEvent] {
					var out *Stream[rxEvent]
					if key == "string" {
						out = s.Dedup(func(e rxEvent) string { return e.ID }, time.Millisecond)
					} else {
						out = DedupBy(s, func(e rxEvent) uint64 { return e.Key }, time.Millisecond, 0)
					}
					op = s.f.ops[len(s.f.ops)-1]
					return out
				})
				r.run(b, events, batch, time.Microsecond, op)
			})
		}
	}
}

// BenchmarkReactiveDedupEvict: more keys in a window than maxKeys, so
// every new key evicts the oldest.
func BenchmarkReactiveDedupEvict(b *testing.B) {
	events := rxEvents(1<<14, 1<<13)
	var op Operator
	r := newRxBench(b, func(s *Stream[rxEvent]) *Stream[rxEvent] {
		out := DedupBy(s, func(e rxEvent) uint64 { return e.Key }, time.Hour, 1024)
		op = s.f.ops[len(s.f.ops)-1]
		return out
	})
	r.run(b, events, 64, time.Microsecond, op)
}

// BenchmarkReactiveThrottle: one event per µs, a 100µs interval: 1% of the
// events pass (2% with the trailing edge).
func BenchmarkReactiveThrottle(b *testing.B) {
	events := rxEvents(1<<12, 16)
	for _, mode := range []string{"leading", "trailing"} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("mode=%s/batch=%d", mode, batch), func(b *testing.B) {
				var op Operator
				r := newRxBench(b, func(s *Stream[rxEvent]) *Stream[rxEvent] {
					var out *Stream[rxEvent]
					if mode == "leading" {
						out = s.Throttle(100 * time.Microsecond)
					} else {
						out = s.ThrottleTrailing(100 * time.Microsecond)
					}
					op = s.f.ops[len(s.f.ops)-1]
					return out
				})
				r.run(b, events, batch, time.Microsecond, op)
			})
		}
	}
}

// BenchmarkReactiveDebounce: one event per µs, a 20µs wait. Keyed, 16 keys
// each twice in a row come back every 32µs, so each key fires once per
// round (half the events are replaced); unkeyed, the stream is never
// silent, so every event but the last is replaced.
func BenchmarkReactiveDebounce(b *testing.B) {
	events := rxEvents(1<<12, 16)
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("keyed=%v/batch=64", keyed), func(b *testing.B) {
			var op Operator
			r := newRxBench(b, func(s *Stream[rxEvent]) *Stream[rxEvent] {
				var out *Stream[rxEvent]
				if keyed {
					out = DebounceBy(s, 20*time.Microsecond, func(e rxEvent) uint64 { return e.Key })
				} else {
					out = s.Debounce(20 * time.Microsecond)
				}
				op = s.f.ops[len(s.f.ops)-1]
				return out
			})
			r.run(b, events, 64, time.Microsecond, op)
		})
	}
}

// BenchmarkReactiveBuffer: groups of 64; one allocation per group.
func BenchmarkReactiveBuffer(b *testing.B) {
	events := rxEvents(1<<12, 16)
	for _, kind := range []string{"count", "time"} {
		b.Run("kind="+kind, func(b *testing.B) {
			clk := NewFakeClock(time.Unix(0, 0))
			f := NewFlow(FlowOptions{Clock: clk, StatsInterval: time.Hour})
			src := NewSource[rxEvent](f, "src")
			var s *Stream[[]rxEvent]
			if kind == "count" {
				s = Buffer(src.Stream(), 64)
			} else {
				s = BufferTime(src.Stream(), 64*time.Microsecond, 0)
			}
			n := 0
			s.SubscribeBatch(func(g [][]rxEvent) { n += len(g) })
			_ = f.Open()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 16 {
				j := i % (len(events) - 16)
				src.Push(events[j : j+16])
				clk.Add(16 * time.Microsecond)
				f.Advance()
			}
			rxSink += n
		})
	}
}

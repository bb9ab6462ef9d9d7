package state

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	badger "github.com/dgraph-io/badger/v4"
)

// Sink keeps results alive so the compiler cannot drop the work.
var Sink any

func benchStore(b *testing.B, noSync bool) *Store {
	b.Helper()
	l, _ := testLogger(b)
	// Default sizes, on the temp dir's file system; every benchmark's
	// store is fresh.
	s, err := Open(Options{Dir: b.TempDir(), NoSync: noSync, Logger: l})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	us := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	b.ReportMetric(us(50), "p50-µs")
	b.ReportMetric(us(99), "p99-µs")
	b.ReportMetric(us(99.9), "p99.9-µs")
	b.ReportMetric(float64(h.Max())/1e3, "max-µs")
}

// latencyRecorder times writes from Put to callback without allocating:
// callbacks run in queue order, so the i-th callback is the i-th write.
type latencyRecorder struct {
	start []int64 // start[i]: when write i was queued (or scheduled)
	done  int     // callbacks so far (committer-only)
	want  atomic.Int64
	hist  *hdrhistogram.Histogram
	fin   chan struct{} // gets a token when done reaches want
	errs  int
}

func newRecorder(n int) *latencyRecorder {
	r := &latencyRecorder{
		start: make([]int64, n),
		hist:  hdrhistogram.New(1, int64(10*time.Second), 3),
		fin:   make(chan struct{}, 1),
	}
	r.want.Store(int64(n))
	return r
}

func (r *latencyRecorder) cb(err error) {
	if err != nil {
		r.errs++
	}
	_ = r.hist.RecordValue(time.Now().UnixNano() - r.start[r.done])
	r.done++
	if int64(r.done) == r.want.Load() {
		r.fin <- struct{}{}
	}
}

// BenchmarkBatcherPut: keyed Put through a Batcher, latency from Put to
// the callback (the write durable).
//
// mode=closed/batch=N: the owner queues N puts, Flushes (the engine's end
// of a ring batch) and waits for their callbacks before the next N.
// mode=paced/rate=R: puts are queued at R per second in rounds, like a
// shard worker that wakes for a ring batch, writes, Flushes and parks:
// the owner sleeps between rounds (about 1 ms on this machine, whatever
// it asks), queues every put due by then, and Flushes. Latency counts
// from the round's queueing (the owner never waits for the store, so the
// store cannot delay the schedule). A spinning owner (no sleep) would
// take one of the two cores from the committer and Badger, and measure
// the Go scheduler: p99 4-5 ms.
func BenchmarkBatcherPut(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("sync=%v/mode=closed/batch=%d", !noSync, batch), func(b *testing.B) {
				benchPutClosed(b, noSync, batch)
			})
		}
		b.Run(fmt.Sprintf("sync=%v/mode=paced/rate=50000", !noSync), func(b *testing.B) {
			benchPutPaced(b, noSync, 50000)
		})
	}
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = Key("bench", fmt.Sprintf("key-%08d", i))
	}
	return keys
}

func benchPutClosed(b *testing.B, noSync bool, batch int) {
	s := benchStore(b, noSync)
	bt := mustBatcher(b, s)
	keys := benchKeys(10_000)
	val := make([]byte, 100)
	rec := newRecorder(b.N)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(batch, b.N-i)
		rec.want.Store(int64(i + n))
		for j := 0; j < n; j++ {
			rec.start[i+j] = time.Now().UnixNano()
			_ = bt.Put(keys[(i+j)%len(keys)], val, 0, rec.cb)
		}
		bt.Flush()
		i += n
		<-rec.fin
	}
	b.StopTimer()
	reportLatency(b, rec.hist)
	st := s.Stats()
	b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
	if rec.errs > 0 {
		b.Fatalf("%d writes failed", rec.errs)
	}
}

func benchPutPaced(b *testing.B, noSync bool, rate int) {
	s := benchStore(b, noSync)
	bt := mustBatcher(b, s)
	keys := benchKeys(10_000)
	val := make([]byte, 100)
	rec := newRecorder(b.N)
	interval := int64(time.Second) / int64(rate)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	begin := time.Now().UnixNano()
	for i := 0; i < b.N; {
		now := time.Now().UnixNano() // one clock read per round, as the engine does
		for ; i < b.N && begin+int64(i)*interval <= now; i++ {
			rec.start[i] = now
			_ = bt.Put(keys[i%len(keys)], val, 0, rec.cb)
		}
		bt.Flush()
		time.Sleep(50 * time.Microsecond) // oversleeps to ~1 ms here: rounds of ~50 puts
	}
	<-rec.fin
	b.StopTimer()
	reportLatency(b, rec.hist)
	st := s.Stats()
	b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
	if rec.errs > 0 {
		b.Fatalf("%d writes failed", rec.errs)
	}
}

// BenchmarkGet: Store.Get of random keys among 100,000 of 100 bytes,
// latency of each call. writer=batcher: while a Batcher commits puts
// (fsynced) beside the reads — Badger makes a read wait for the commits
// in flight when it begins.
func BenchmarkGet(b *testing.B) {
	for _, writer := range []string{"none", "batcher"} {
		b.Run("writer="+writer, func(b *testing.B) {
			s := benchStore(b, false)
			keys := benchKeys(100_000)
			val := make([]byte, 100)
			bt := mustBatcher(b, s)
			for _, k := range keys {
				_ = bt.Put(k, val, 0, nil)
			}
			if err := bt.Sync(); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			stopped := make(chan struct{})
			if writer == "batcher" {
				go func() {
					defer close(stopped)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						_ = bt.Put(keys[i%len(keys)], val, 0, nil)
						if i%16 == 0 {
							bt.Flush()
							time.Sleep(100 * time.Microsecond)
						}
					}
				}()
			} else {
				close(stopped)
			}
			h := hdrhistogram.New(1, int64(10*time.Second), 3)
			rng := rand.New(rand.NewPCG(1, 2))
			dst := make([]byte, 0, 128)
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				v, err := s.AppendValue(dst[:0], k)
				_ = h.RecordValue(int64(time.Since(t0)))
				if err != nil || len(v) != 100 {
					b.Fatalf("Get: %v", err)
				}
			}
			b.StopTimer()
			close(stop)
			<-stopped
			reportLatency(b, h)
		})
	}
}

// BenchmarkLogAppend: room log appends of 100-byte messages through a
// Batcher, Flushed every 64 (a ring batch), without waiting for each
// commit: throughput, with the last commit waited for.
func BenchmarkLogAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v/size=100", !noSync), func(b *testing.B) {
			s := benchStore(b, noSync)
			bt := mustBatcher(b, s)
			msg := make([]byte, 100)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				_ = bt.Append("bench.room", uint64(i+1), msg, nil)
				if i%64 == 63 {
					bt.Flush()
				}
			}
			if err := bt.Sync(); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			st := s.Stats()
			if st.CommitFailures > 0 {
				b.Fatalf("%d commits failed", st.CommitFailures)
			}
			b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
		})
	}
}

// BenchmarkLogRange: replay of a 100,000-message room (100 bytes each),
// one op = the whole room. source=memtable: just appended; source=tables:
// after a Close and reopen (the memtable flushed into a table, as after a
// restart). iter=badger-prefetch is the same walk with Badger's value
// prefetch on, for comparison with Range (which leaves it off).
func BenchmarkLogRange(b *testing.B) {
	const n = 100_000
	msg := make([]byte, 100)
	build := func(b *testing.B, reopen bool) *Store {
		l, _ := testLogger(b)
		o := Options{Dir: b.TempDir(), NoSync: true, Logger: l}
		s, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		bt := mustBatcher(b, s)
		for i := 0; i < n; i++ {
			_ = bt.Append("replay", uint64(i+1), msg, nil)
			if i%1024 == 1023 {
				bt.Flush()
			}
		}
		if err := bt.Sync(); err != nil {
			b.Fatal(err)
		}
		if reopen {
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if s, err = Open(o); err != nil {
				b.Fatal(err)
			}
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	run := func(b *testing.B, walk func() int) {
		b.SetBytes(n * int64(len(msg)))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if got := walk(); got != n {
				b.Fatalf("replayed %d, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	rangeAll := func(l *Log) func() int {
		return func() int {
			got, bytes := 0, 0
			_ = l.Range("replay", 0, math.MaxUint64, func(seq uint64, data []byte) bool {
				got++
				bytes += len(data)
				return true
			})
			Sink = bytes
			return got
		}
	}
	for _, source := range []string{"memtable", "tables"} {
		b.Run("source="+source+"/iter=range/msgs=100000", func(b *testing.B) {
			s := build(b, source == "tables")
			run(b, rangeAll(s.Log()))
		})
	}
	b.Run("source=memtable/iter=badger-prefetch/msgs=100000", func(b *testing.B) {
		s := build(b, false)
		run(b, func() int {
			got, bytes := 0, 0
			_ = s.db.View(func(txn *badger.Txn) error {
				prefix := appendRoomPrefix(nil, "replay")
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
				defer it.Close()
				for it.Seek(prefix); it.Valid(); it.Next() {
					_ = it.Item().Value(func(v []byte) error { bytes += len(v); return nil })
					got++
				}
				return nil
			})
			Sink = bytes
			return got
		})
	})
}

package state

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// rssBytes reads the resident set size from /proc/self/statm (0 where
// there is none).
func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := 0
	start := 0
	for i, c := range raw {
		if c == ' ' || c == '\n' {
			if f == 1 {
				pages, _ := strconv.ParseInt(string(raw[start:i]), 10, 64)
				return pages * int64(os.Getpagesize())
			}
			f++
			start = i + 1
		}
	}
	return 0
}

func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkSessions1M holds 1,000,000 sessions ("s-1xxxxxxx" keys, 32
// bytes of data each, written through a Batcher to an in-memory store),
// then times Touch refreshes of random sessions among them.
//
// It builds the sessions twice. First to measure memory: after a GC with
// them held and again once they are dropped, with no write in between,
// so sessions-heap-B/session is the Sessions' own heap (Badger's
// memtables not counted); heap-all-B/session is the heap's growth from
// the empty store, Badger's share of the records included; rss-MiB is
// the process's resident set then. Then again to time Touch: ns/op is
// one Touch of an existing session, create-ns/session one Touch creating
// a session (its record queued):
//
//	op=refresh        data nil, record written at most once per Idle/4:
//	                  the common case, no write queued;
//	op=refresh-write  new 32-byte data each time: the record is queued.
func BenchmarkSessions1M(b *testing.B) {
	const n = 1_000_000
	l, _ := testLogger(b)
	store := mustOpen(b, Options{InMemory: true, Logger: l})
	bt := mustBatcher(b, store)
	clock := &fakeClock{now: t0}
	data := make([]byte, 32)
	build := func() (*Sessions, time.Duration) {
		s, err := store.NewSessions(SessionOptions{Namespace: "sess:bench", Idle: time.Hour, Batcher: bt, Now: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		kb := []byte("s-")
		start := time.Now()
		for i := range n {
			kb = strconv.AppendInt(kb[:2], int64(1e7+i), 10)
			data[0] = byte(i)
			s.Touch(string(kb), data)
			if i%4096 == 0 {
				bt.Flush()
			}
		}
		took := time.Since(start)
		if err := bt.Sync(); err != nil {
			b.Fatal(err)
		}
		if s.Len() != n {
			b.Fatalf("Len = %d", s.Len())
		}
		return s, took
	}

	heap0 := heapAfterGC()
	s, _ := build()
	time.Sleep(time.Second) // let Badger's memtable flushes settle
	heap1 := heapAfterGC()
	rss := rssBytes()
	runtime.KeepAlive(s)
	s = nil
	heap2 := heapAfterGC()
	sessHeap := float64(heap1-heap2) / n
	allHeap := float64(heap1-heap0) / n

	s, create := build()
	keys := make([]string, 1<<16) // a random sample, built before timing
	for i := range keys {
		keys[i] = "s-" + strconv.Itoa(1e7+int((uint64(i)*2654435761)%n))
	}
	b.Logf("1M sessions: Sessions heap %.1f B/session, heap incl. store %.1f B/session, RSS %.0f MiB, create %.0f ns/session",
		sessHeap, allHeap, float64(rss)/(1<<20), float64(create.Nanoseconds())/n)
	for _, mode := range []string{"refresh", "refresh-write"} {
		b.Run("op="+mode, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if mode == "refresh-write" {
					data[0]++
					s.Touch(keys[i&(len(keys)-1)], data)
				} else {
					s.Touch(keys[i&(len(keys)-1)], nil)
				}
				i++
				if i&1023 == 0 {
					bt.Flush()
				}
			}
			b.StopTimer()
			if err := bt.Sync(); err != nil {
				b.Fatal(err)
			}
			// After the loop: b.Loop's start clears earlier metrics.
			b.ReportMetric(sessHeap, "sessions-heap-B/session")
			b.ReportMetric(allHeap, "heap-all-B/session")
			b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
			b.ReportMetric(float64(create.Nanoseconds())/n, "create-ns/session")
		})
	}
	if s.Len() != n || s.Err() != nil {
		b.Fatalf("Len = %d, Err = %v", s.Len(), s.Err())
	}
}

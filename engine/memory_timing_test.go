package engine

import (
	"runtime"
	"testing"
)

// BenchmarkBufferedMessagesMemory: the heap 100,000 buffered messages of
// 100 bytes take in a room's history (what `join … since` replays from),
// measured with runtime.ReadMemStats after GC around the fill.
func BenchmarkBufferedMessagesMemory(b *testing.B) {
	const n, size = 100_000, 100
	for i := 0; i < b.N; i++ {
		e, err := New(Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Rooms: []RoomPolicy{{Match: "*", History: n}}})
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, size)
		for k := range data {
			data[k] = 'a' + byte(k%26)
		}
		data[0], data[size-1] = '"', '"'
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for k := 0; k < n; k++ {
			if _, err := e.Publish("buffered", data); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		mib := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		b.ReportMetric(mib, "MiB/100k-msgs")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/msg")
		runtime.KeepAlive(e)
	}
}

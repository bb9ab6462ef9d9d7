package ring

import (
	"fmt"
	"testing"
)

// benchCap is the capacity of the ring and of the channel it is compared to.
const benchCap = 1024

// BenchmarkHandoff measures moving b.N items from a producer goroutine to
// the consumer (the benchmark goroutine), one op per item, so ns/op is the
// cost per item. batch is how many items each side moves per call:
//
//   - impl=ring: Push/Pop for batch=1, PushWait/PopWait for larger batches.
//   - impl=chan: one send and one receive per item on a channel with the
//     same capacity; batch only groups the sends and receives in loops.
//   - impl=chanarray: one [batch]uint64 array per send on a channel with
//     benchCap/batch capacity, the usual way to batch over a channel.
func BenchmarkHandoff(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("impl=ring/batch=%d", batch), func(b *testing.B) {
			benchHandoffRing(b, batch)
		})
		b.Run(fmt.Sprintf("impl=chan/batch=%d", batch), func(b *testing.B) {
			benchHandoffChan(b, batch)
		})
	}
	b.Run("impl=chanarray/batch=64", benchHandoffChanArray)
}

// finish checks that the consumer saw 0..b.N-1 and reports ns per item.
func finish(b *testing.B, sum uint64) {
	b.StopTimer()
	if n := uint64(b.N); sum != n*(n-1)/2 {
		b.Fatalf("checksum %d, want %d", sum, n*(n-1)/2)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/item")
}

func benchHandoffRing(b *testing.B, batch int) {
	r := New[uint64](benchCap)
	src := make([]uint64, batch)
	dst := make([]uint64, batch)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		if batch == 1 {
			for i := range b.N {
				r.Push(uint64(i))
			}
		} else {
			for sent := 0; sent < b.N; {
				k := min(batch, b.N-sent)
				for j := range k {
					src[j] = uint64(sent + j)
				}
				r.PushWait(src[:k])
				sent += k
			}
		}
		r.Close()
	}()
	var sum uint64
	if batch == 1 {
		for {
			v, ok := r.Pop()
			if !ok {
				break
			}
			sum += v
		}
	} else {
		for {
			n, ok := r.PopWait(dst)
			if !ok {
				break
			}
			for _, v := range dst[:n] {
				sum += v
			}
		}
	}
	finish(b, sum)
}

func benchHandoffChan(b *testing.B, batch int) {
	ch := make(chan uint64, benchCap)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for sent := 0; sent < b.N; {
			k := min(batch, b.N-sent)
			for j := range k {
				ch <- uint64(sent + j)
			}
			sent += k
		}
		close(ch)
	}()
	var sum uint64
	for done := false; !done; {
		for range batch {
			v, ok := <-ch
			if !ok {
				done = true
				break
			}
			sum += v
		}
	}
	finish(b, sum)
}

func benchHandoffChanArray(b *testing.B) {
	const batch = 64
	type chunk struct {
		n    int
		vals [batch]uint64
	}
	ch := make(chan chunk, benchCap/batch)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for sent := 0; sent < b.N; {
			var c chunk
			c.n = min(batch, b.N-sent)
			for j := range c.n {
				c.vals[j] = uint64(sent + j)
			}
			ch <- c
			sent += c.n
		}
		close(ch)
	}()
	var sum uint64
	for c := range ch {
		for _, v := range c.vals[:c.n] {
			sum += v
		}
	}
	finish(b, sum)
}

// BenchmarkPushPop measures one goroutine pushing and then popping, with no
// contention: the pure cost of the operations. One op is one item.
func BenchmarkPushPop(b *testing.B) {
	b.Run("impl=ring/api=item", func(b *testing.B) {
		r := New[uint64](benchCap)
		b.ReportAllocs()
		var sum uint64
		for i := 0; b.Loop(); i++ {
			r.TryPush(uint64(i))
			v, _ := r.TryPop()
			sum += v
		}
		sink = sum
	})
	b.Run("impl=ring/api=slot", func(b *testing.B) {
		r := New[uint64](benchCap)
		b.ReportAllocs()
		var sum uint64
		for i := 0; b.Loop(); i++ {
			*r.Reserve() = uint64(i)
			r.Commit()
			sum += *r.Peek()
			r.Release()
		}
		sink = sum
	})
	b.Run("impl=ring/api=batch64", func(b *testing.B) {
		const batch = 64
		r := New[uint64](benchCap)
		src := make([]uint64, batch)
		dst := make([]uint64, batch)
		b.ReportAllocs()
		var sum uint64
		for i := 0; i < b.N; i += batch {
			r.PushBatch(src)
			sum += uint64(r.PopBatch(dst))
		}
		sink = sum
	})
	b.Run("impl=chan/api=item", func(b *testing.B) {
		ch := make(chan uint64, benchCap)
		b.ReportAllocs()
		var sum uint64
		for i := 0; b.Loop(); i++ {
			ch <- uint64(i)
			sum += <-ch
		}
		sink = sum
	})
}

var sink uint64

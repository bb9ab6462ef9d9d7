package ring

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// item holds a pointer (the string), so the ring zeroes consumed slots and
// the property test covers that path too.
type item struct {
	seq int
	tag string
}

func mkItem(i int) item { return item{seq: i, tag: strconv.Itoa(i)} }

// op is one step of a producer or consumer script: kind selects the method,
// batch the batch size for batch methods.
type op struct {
	kind  int
	batch int
}

const (
	// producer kinds
	opTryPush = iota
	opPushBatch
	opReserve // Reserve + Commit
	opPush
	opPushWait
	opReserveWait // ReserveWait + Commit
	numProducerOps
)

const (
	// consumer kinds
	opTryPop = iota
	opPopBatch
	opPeek // Peek + Release
	opPop
	opPopWait
	opPeekWait // PeekWait + Release
	numConsumerOps
)

func opGen(kinds int) *rapid.Generator[op] {
	return rapid.Custom(func(t *rapid.T) op {
		return op{
			kind:  rapid.IntRange(0, kinds-1).Draw(t, "kind"),
			batch: rapid.IntRange(1, 12).Draw(t, "batch"),
		}
	})
}

// runProducer pushes items 0..n-1 following script (cycled), then closes.
func runProducer(r *SPSC[item], n int, script []op) {
	src := make([]item, n)
	for i := range src {
		src[i] = mkItem(i)
	}
	next := 0
	for i := 0; next < n; i++ {
		o := script[i%len(script)]
		k := min(o.batch, n-next)
		before := next
		switch o.kind {
		case opTryPush:
			if r.TryPush(src[next]) {
				next++
			}
		case opPushBatch:
			next += r.PushBatch(src[next : next+k])
		case opReserve:
			if p := r.Reserve(); p != nil {
				*p = src[next]
				r.Commit()
				next++
			}
		case opPush:
			r.Push(src[next])
			next++
		case opPushWait:
			r.PushWait(src[next : next+k])
			next += k
		case opReserveWait:
			*r.ReserveWait() = src[next]
			r.Commit()
			next++
		}
		if next == before {
			runtime.Gosched()
		}
	}
	r.Close()
}

// runConsumer pops until the ring is closed and drained, following script
// (cycled), and returns everything it received in order.
func runConsumer(r *SPSC[item], script []op) []item {
	var got []item
	dst := make([]item, 12)
	for i := 0; ; i++ {
		o := script[i%len(script)]
		before := len(got)
		switch o.kind {
		case opTryPop:
			if v, ok := r.TryPop(); ok {
				got = append(got, v)
			}
		case opPopBatch:
			n := r.PopBatch(dst[:o.batch])
			got = append(got, dst[:n]...)
		case opPeek:
			if p := r.Peek(); p != nil {
				got = append(got, *p)
				r.Release()
			}
		case opPop:
			v, ok := r.Pop()
			if !ok {
				return got
			}
			got = append(got, v)
		case opPopWait:
			n, ok := r.PopWait(dst[:o.batch])
			if !ok {
				return got
			}
			got = append(got, dst[:n]...)
		case opPeekWait:
			p, ok := r.PeekWait()
			if !ok {
				return got
			}
			got = append(got, *p)
			r.Release()
		}
		if len(got) == before {
			// Closed first, then Len: after Closed is true, tail is final.
			if r.Closed() && r.Len() == 0 {
				return got
			}
			runtime.Gosched()
		}
	}
}

// TestConcurrentProperty runs a producer and a consumer with random scripts
// of mixed methods on a small random ring, and checks that the consumer
// receives every item exactly once, in order, and that the drained ring
// holds no stale values.
func TestConcurrentProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		capacity := rapid.IntRange(1, 9).Draw(t, "capacity")
		n := rapid.IntRange(0, 300).Draw(t, "items")
		w := WaitStrategy{
			Spins:  rapid.IntRange(0, 8).Draw(t, "spins"),
			Yields: rapid.IntRange(0, 2).Draw(t, "yields"),
		}
		prod := rapid.SliceOfN(opGen(numProducerOps), 1, 8).Draw(t, "producer")
		cons := rapid.SliceOfN(opGen(numConsumerOps), 1, 8).Draw(t, "consumer")

		r := NewWithWait[item](capacity, w)
		go runProducer(r, n, prod)
		result := make(chan []item, 1)
		go func() { result <- runConsumer(r, cons) }()

		var got []item
		select {
		case got = <-result:
		case <-time.After(10 * time.Second):
			t.Fatalf("deadlock: Len=%d closed=%v", r.Len(), r.Closed())
		}
		if len(got) != n {
			t.Fatalf("received %d items, want %d", len(got), n)
		}
		for i, v := range got {
			if v != mkItem(i) {
				t.Fatalf("item %d = %+v, want %+v", i, v, mkItem(i))
			}
		}
		if v, ok := r.TryPop(); ok {
			t.Fatalf("extra item %+v after drain", v)
		}
		for i, v := range r.buf {
			if v != (item{}) {
				t.Fatalf("slot %d not zeroed after drain: %+v", i, v)
			}
		}
	})
}

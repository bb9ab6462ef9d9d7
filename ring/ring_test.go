package ring

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// wantPanic runs f and fails unless it panics with a message starting with
// "ring: " and containing substr.
func wantPanic(t *testing.T, substr string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		msg, _ := recover().(string)
		if !strings.HasPrefix(msg, "ring: ") || !strings.Contains(msg, substr) {
			t.Fatalf("panic = %q, want prefix %q containing %q", msg, "ring: ", substr)
		}
	}()
	f()
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewCapacity(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {1024, 1024}, {1025, 2048},
	} {
		r := New[int](tc.in)
		if r.Cap() != tc.want || r.Len() != 0 {
			t.Errorf("New(%d): Cap=%d Len=%d, want Cap=%d Len=0", tc.in, r.Cap(), r.Len(), tc.want)
		}
	}
	wantPanic(t, "capacity must be positive", func() { New[int](0) })
	wantPanic(t, "capacity must be positive", func() { New[int](-3) })
	wantPanic(t, "exceeds", func() { New[int](1<<62 + 1) })
}

func TestLayout(t *testing.T) {
	var r SPSC[int]
	// Every pair of groups written by different goroutines must be at least
	// 128 bytes apart.
	offs := []uintptr{
		unsafe.Offsetof(r.tail), unsafe.Offsetof(r.head),
		unsafe.Offsetof(r.buf), unsafe.Offsetof(r.consSleeping),
	}
	for i := 1; i < len(offs); i++ {
		if offs[i]-offs[i-1] < 128+8 {
			t.Errorf("groups %d and %d only %d bytes apart", i-1, i, offs[i]-offs[i-1])
		}
	}
}

func TestTryPushPopFullEmpty(t *testing.T) {
	r := New[int](4)
	if _, ok := r.TryPop(); ok {
		t.Fatal("TryPop on empty ring succeeded")
	}
	for i := range 4 {
		if !r.TryPush(i) {
			t.Fatalf("TryPush(%d) failed on non-full ring", i)
		}
		if r.Len() != i+1 {
			t.Fatalf("Len = %d, want %d", r.Len(), i+1)
		}
	}
	if r.TryPush(99) {
		t.Fatal("TryPush on full ring succeeded")
	}
	if r.PushBatch([]int{1, 2}) != 0 || r.Reserve() != nil {
		t.Fatal("PushBatch/Reserve on full ring made progress")
	}
	for i := range 4 {
		if v, ok := r.TryPop(); !ok || v != i {
			t.Fatalf("TryPop = %d, %v; want %d, true", v, ok, i)
		}
	}
	if _, ok := r.TryPop(); ok || r.Len() != 0 {
		t.Fatal("ring not empty after draining")
	}
	if r.PopBatch(make([]int, 3)) != 0 || r.Peek() != nil {
		t.Fatal("PopBatch/Peek on empty ring made progress")
	}
}

func TestWraparound(t *testing.T) {
	r := New[int](4)
	next, want := 0, 0
	for round := range 50 {
		k := 1 + round%4 // 1..4 items per round, so the indices drift
		for range k {
			if !r.TryPush(next) {
				t.Fatalf("round %d: TryPush failed", round)
			}
			next++
		}
		for range k {
			v, ok := r.TryPop()
			if !ok || v != want {
				t.Fatalf("round %d: TryPop = %d, %v; want %d", round, v, ok, want)
			}
			want++
		}
	}
}

func TestBatchPartialAndWrap(t *testing.T) {
	r := New[int](8)
	if n := r.PushBatch([]int{0, 1, 2, 3, 4}); n != 5 {
		t.Fatalf("PushBatch = %d, want 5", n)
	}
	// Only 3 of 10 fit.
	if n := r.PushBatch([]int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}); n != 3 {
		t.Fatalf("partial PushBatch = %d, want 3", n)
	}
	dst := make([]int, 2)
	if n := r.PopBatch(dst); n != 2 || !slices.Equal(dst, []int{0, 1}) {
		t.Fatalf("PopBatch = %d %v", n, dst)
	}
	// Tail is at 8, head at 2: this batch wraps around the end of buf.
	if n := r.PushBatch([]int{8, 9}); n != 2 {
		t.Fatalf("wrapping PushBatch = %d, want 2", n)
	}
	dst = make([]int, 100)
	n := r.PopBatch(dst)
	if want := []int{2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(dst[:n], want) {
		t.Fatalf("wrapping PopBatch = %v, want %v", dst[:n], want)
	}
	if r.PushBatch(nil) != 0 || r.PopBatch(nil) != 0 {
		t.Fatal("empty batches moved items")
	}
}

func TestReserveCommitPeekRelease(t *testing.T) {
	type big struct{ a [32]int }
	r := New[big](2)
	for i := range 2 {
		p := r.Reserve()
		if p == nil {
			t.Fatalf("Reserve %d returned nil", i)
		}
		p.a[0], p.a[31] = i, -i
		r.Commit()
	}
	if r.Reserve() != nil {
		t.Fatal("Reserve on full ring returned a slot")
	}
	p := r.Peek()
	if p == nil || p.a[0] != 0 {
		t.Fatalf("Peek = %v", p)
	}
	if q := r.Peek(); q != p {
		t.Fatal("second Peek returned a different slot")
	}
	r.Release()
	if p = r.Peek(); p == nil || p.a[0] != 1 || p.a[31] != -1 {
		t.Fatalf("Peek after Release = %v", p)
	}
	r.Release()
	if r.Peek() != nil || r.Len() != 0 {
		t.Fatal("ring not empty")
	}
}

func TestMayHoldPointers(t *testing.T) {
	type flat struct { // blank fields: only their types matter here
		_ int
		_ [4]float64
		_ struct{ _ bool }
	}
	type withPtr struct {
		_ int
		_ string
	}
	for _, tc := range []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[int](), false},
		{reflect.TypeFor[flat](), false},
		{reflect.TypeFor[[0]*int](), false},
		{reflect.TypeFor[*int](), true},
		{reflect.TypeFor[string](), true},
		{reflect.TypeFor[[]byte](), true},
		{reflect.TypeFor[any](), true},
		{reflect.TypeFor[withPtr](), true},
		{reflect.TypeFor[[2]withPtr](), true},
	} {
		if got := mayHoldPointers(tc.typ); got != tc.want {
			t.Errorf("mayHoldPointers(%v) = %v, want %v", tc.typ, got, tc.want)
		}
	}
}

func TestPoppedSlotsAreZeroed(t *testing.T) {
	r := New[*int](4)
	ptrs := make([]*int, 16)
	for i := range ptrs {
		ptrs[i] = new(int)
	}
	allNil := func(step string) {
		t.Helper()
		for i, p := range r.buf {
			if p != nil {
				t.Fatalf("%s: slot %d of the drained ring still holds a pointer", step, i)
			}
		}
	}
	r.PushBatch(ptrs[:3])
	r.TryPop()
	r.Peek()
	r.Release()
	r.Pop()
	allNil("single pops")
	r.PushBatch(ptrs[3:7]) // wraps: slots 3,0,1,2
	r.PopBatch(make([]*int, 4))
	allNil("batch pop across wrap")
	r.PushBatch(ptrs[7:9])
	r.PopWait(make([]*int, 8))
	allNil("PopWait")
}

func TestBlockingWithoutWaiting(t *testing.T) {
	r := New[int](4)
	r.Push(1)
	r.PushWait([]int{2, 3})
	*r.ReserveWait() = 4
	r.Commit()
	if v, ok := r.Pop(); !ok || v != 1 {
		t.Fatalf("Pop = %d, %v", v, ok)
	}
	if p, ok := r.PeekWait(); !ok || *p != 2 {
		t.Fatalf("PeekWait = %v, %v", p, ok)
	}
	r.Release()
	dst := make([]int, 4)
	if n, ok := r.PopWait(dst); !ok || !slices.Equal(dst[:n], []int{3, 4}) {
		t.Fatalf("PopWait = %v, %v", dst[:n], ok)
	}
	if n, ok := r.PopWait(nil); n != 0 || !ok {
		t.Fatalf("PopWait(nil) = %d, %v; want 0, true", n, ok)
	}
}

func TestClose(t *testing.T) {
	r := New[int](4)
	r.PushBatch([]int{1, 2, 3})
	if r.Closed() {
		t.Fatal("Closed before Close")
	}
	r.Close()
	r.Close() // no-op
	if !r.Closed() {
		t.Fatal("not Closed after Close")
	}
	wantPanic(t, "closed", func() { r.TryPush(4) })
	wantPanic(t, "closed", func() { r.Push(4) })
	wantPanic(t, "closed", func() { r.PushBatch([]int{4}) })
	wantPanic(t, "closed", func() { r.PushWait([]int{4}) })
	wantPanic(t, "closed", func() { r.Reserve() })
	wantPanic(t, "closed", func() { r.ReserveWait() })
	if v, ok := r.Pop(); !ok || v != 1 {
		t.Fatalf("Pop after Close = %d, %v; want buffered item", v, ok)
	}
	if p, ok := r.PeekWait(); !ok || *p != 2 {
		t.Fatalf("PeekWait after Close = %v, %v", p, ok)
	}
	r.Release()
	dst := make([]int, 4)
	if n, ok := r.PopWait(dst); n != 1 || !ok || dst[0] != 3 {
		t.Fatalf("PopWait after Close = %d, %v", n, ok)
	}
	if _, ok := r.Pop(); ok {
		t.Fatal("Pop on closed, drained ring returned ok")
	}
	if n, ok := r.PopWait(dst); n != 0 || ok {
		t.Fatalf("PopWait on closed, drained ring = %d, %v", n, ok)
	}
	if p, ok := r.PeekWait(); p != nil || ok {
		t.Fatalf("PeekWait on closed, drained ring = %v, %v", p, ok)
	}
}

// parkNow makes a blocked side park at once, so the tests exercise the
// flag-and-channel wake-up rather than spinning.
var parkNow = WaitStrategy{}

func TestBlockedConsumerWokenByPush(t *testing.T) {
	for _, w := range []WaitStrategy{parkNow, DefaultWaitStrategy} {
		r := NewWithWait[int](4, w)
		got := make(chan int)
		go func() {
			v, _ := r.Pop()
			got <- v
		}()
		eventually(t, "consumer to park", func() bool { return r.consSleeping.Load() == 1 })
		r.Push(42)
		select {
		case v := <-got:
			if v != 42 {
				t.Fatalf("Pop = %d, want 42", v)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("consumer not woken by Push")
		}
	}
}

func TestBlockedConsumerWokenByClose(t *testing.T) {
	r := NewWithWait[int](4, parkNow)
	done := make(chan bool)
	go func() {
		_, ok := r.PopWait(make([]int, 4))
		done <- ok
	}()
	eventually(t, "consumer to park", func() bool { return r.consSleeping.Load() == 1 })
	r.Close()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("PopWait returned ok after Close on empty ring")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("consumer not woken by Close")
	}
}

func TestBlockedProducerWokenByPop(t *testing.T) {
	r := NewWithWait[int](2, parkNow)
	r.PushBatch([]int{0, 1})
	done := make(chan struct{})
	go func() {
		r.PushWait([]int{2, 3, 4})
		close(done)
	}()
	for want := range 5 {
		eventually(t, "producer to park or finish", func() bool {
			select {
			case <-done:
				return true
			default:
				return r.prodSleeping.Load() == 1
			}
		})
		v, ok := r.Pop()
		if !ok || v != want {
			t.Fatalf("Pop = %d, %v; want %d", v, ok, want)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("producer not woken by Pop")
	}
}

func TestStaleWakeTokenIsHarmless(t *testing.T) {
	r := NewWithWait[int](2, parkNow)
	r.consWake <- struct{}{} // as if a wake-up raced with a successful re-check
	got := make(chan int)
	go func() {
		v, _ := r.Pop()
		got <- v
	}()
	eventually(t, "consumer to re-park", func() bool {
		return r.consSleeping.Load() == 1 && len(r.consWake) == 0
	})
	r.Push(7)
	if v := <-got; v != 7 {
		t.Fatalf("Pop = %d, want 7", v)
	}
}

func TestInvariantChecks(t *testing.T) {
	if !invariants {
		t.Skip("needs -tags invariants or -race")
	}
	r := New[int](4)
	wantPanic(t, "Commit without Reserve", r.Commit)
	r.Reserve()
	r.TryPush(1) // invalidates the reservation
	wantPanic(t, "Commit without Reserve", r.Commit)
	wantPanic(t, "Release without Peek", r.Release)
	r.Peek()
	r.TryPop()
	wantPanic(t, "Release without Peek", r.Release)
	r.tail.Store(100) // corrupt: tail > head+cap
	wantPanic(t, "invariant violated", func() { r.TryPop() })
}

// TestPingPongStress hands items one at a time through a one-slot ring whose
// sides park at once, so nearly every item goes through the sleep/wake
// protocol in both directions. A lost wake-up shows up as a hang.
func TestPingPongStress(t *testing.T) {
	const n = 20000
	r := NewWithWait[int](1, parkNow)
	go func() {
		for i := range n {
			r.Push(i)
		}
		r.Close()
	}()
	done := make(chan error, 1)
	go func() {
		for want := 0; ; want++ {
			v, ok := r.Pop()
			if !ok {
				if want != n {
					done <- fmt.Errorf("closed after %d items, want %d", want, n)
				}
				close(done)
				return
			}
			if v != want {
				done <- fmt.Errorf("Pop = %d, want %d", v, want)
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("hang (lost wake-up?): Len=%d consSleeping=%d prodSleeping=%d",
			r.Len(), r.consSleeping.Load(), r.prodSleeping.Load())
	}
}

// TestRecheckAfterAnnouncingSleep makes the other side publish in the window
// between a waiter's last poll and its raising the sleeping flag. The peer
// sees the flag still down and sends no wake-up, so only the waiter's
// re-check after raising the flag keeps it from sleeping forever.
func TestRecheckAfterAnnouncingSleep(t *testing.T) {
	if !invariants {
		t.Skip("the beforePark hook needs -tags invariants or -race")
	}
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: lost wake-up", what)
		}
	}

	r := NewWithWait[int](2, parkNow)
	r.beforePark = func() { r.beforePark = nil; r.TryPush(5) } // acts as producer
	within("consumer", func() {
		if v, ok := r.Pop(); !ok || v != 5 {
			t.Errorf("Pop = %d, %v; want 5, true", v, ok)
		}
	})

	r = NewWithWait[int](2, parkNow)
	r.beforePark = func() { r.beforePark = nil; r.Close() }
	within("consumer on Close", func() {
		if _, ok := r.Pop(); ok {
			t.Error("Pop on closed empty ring returned ok")
		}
	})

	r = NewWithWait[int](1, parkNow)
	r.TryPush(1)
	r.beforePark = func() { r.beforePark = nil; r.TryPop() } // acts as consumer
	within("producer", func() { r.Push(2) })
	if v, ok := r.TryPop(); !ok || v != 2 {
		t.Fatalf("TryPop = %d, %v; want 2, true", v, ok)
	}
}

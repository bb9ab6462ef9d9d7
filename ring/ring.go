package ring

import (
	"fmt"
	"math/bits"
	"reflect"
	"sync/atomic"
)

// pad separates groups of fields written by different goroutines. 128 bytes
// (two cache lines) of padding between any two groups means no 64-byte line
// and no 128-byte aligned line pair (the unit of the adjacent-line
// prefetcher) holds fields of two groups, whatever the struct's alignment.
type pad [128]byte

// maxCapacity bounds New so that rounding up cannot overflow.
const maxCapacity = 1 << 62

// SPSC is a bounded lock-free single-producer single-consumer ring. Create it
// with New or NewWithWait; the zero value is not usable. See the package
// documentation for the ownership rules and which methods each side may call.
type SPSC[T any] struct {
	_ pad

	// Producer group: written only by the producer.

	// tail counts items ever published. Stored only by the producer; the
	// store publishes the slot writes before it. Loaded by the consumer when
	// its cachedTail says the ring is empty, and by Len.
	tail atomic.Uint64
	// cachedHead is the producer's last observed value of head.
	// Invariant: cachedHead <= head, and tail <= cachedHead+size.
	cachedHead uint64
	// closedLocal mirrors closed for the producer's fast check.
	closedLocal bool
	// reserved is set by Reserve and cleared by every other producer method;
	// maintained only when invariants is true.
	reserved bool

	_ pad

	// Consumer group: written only by the consumer.

	// head counts items ever consumed. Stored only by the consumer, after it
	// finished reading and zeroing the freed slots; loaded by the producer
	// when its cachedHead says the ring is full, and by Len.
	head atomic.Uint64
	// cachedTail is the consumer's last observed value of tail.
	// Invariant: head <= cachedTail <= tail.
	cachedTail uint64
	// peeked is set by Peek and cleared by every other consumer method;
	// maintained only when invariants is true.
	peeked bool

	_ pad

	// Read-only after construction; shared clean by both sides.

	buf        []T    // the slots; len(buf) == size
	size       uint64 // capacity, a power of two
	mask       uint64 // size - 1
	clearSlots bool   // whether T may hold pointers, so freed slots are zeroed
	wait       WaitStrategy
	consWake   chan struct{} // capacity 1; wakes a parked consumer
	prodWake   chan struct{} // capacity 1; wakes a parked producer
	// beforePark, if set, runs in awaitSpace and awaitData just before
	// the sleeping flag is raised. Test hook, consulted only when
	// invariants is true.
	beforePark func()

	_ pad

	// Wait group: read on every publish, written only around parking and by
	// Close, so in steady state it stays shared-clean in both caches.

	// consSleeping is 1 while the consumer is (about to be) parked on
	// consWake. Set and cleared by the consumer; cleared by the producer's
	// Swap when it sends a wake-up.
	consSleeping atomic.Uint32
	// prodSleeping is the same for the producer parked on prodWake.
	prodSleeping atomic.Uint32
	// closed is set once by Close, after the producer's last tail store.
	closed atomic.Bool

	_ pad
}

// New returns an empty ring holding at least capacity items (capacity is
// rounded up to a power of two) using DefaultWaitStrategy. It panics if
// capacity <= 0 or capacity > 2^62.
func New[T any](capacity int) *SPSC[T] {
	return NewWithWait[T](capacity, DefaultWaitStrategy)
}

// NewWithWait is like New but uses w for the blocking methods. Negative
// fields of w are treated as zero.
func NewWithWait[T any](capacity int, w WaitStrategy) *SPSC[T] {
	if capacity <= 0 {
		panic(fmt.Sprintf("ring: capacity must be positive, got %d", capacity))
	}
	if uint64(capacity) > maxCapacity {
		panic(fmt.Sprintf("ring: capacity %d exceeds 2^62", capacity))
	}
	size := uint64(1) << bits.Len64(uint64(capacity)-1)
	w.Spins = max(w.Spins, 0)
	w.Yields = max(w.Yields, 0)
	return &SPSC[T]{
		buf:        make([]T, size),
		size:       size,
		mask:       size - 1,
		clearSlots: mayHoldPointers(reflect.TypeFor[T]()),
		wait:       w,
		consWake:   make(chan struct{}, 1),
		prodWake:   make(chan struct{}, 1),
	}
}

// mayHoldPointers reports whether values of type t can contain pointers, in
// which case consumed slots are zeroed so they do not keep garbage alive.
func mayHoldPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32,
		reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64, reflect.Uintptr, reflect.Float32,
		reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && mayHoldPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if mayHoldPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default: // pointers, strings, slices, maps, chans, funcs, interfaces
		return true
	}
}

// Cap returns the capacity of the ring. Any goroutine.
func (r *SPSC[T]) Cap() int { return int(r.size) }

// Len returns the number of items in the ring. Any goroutine. The value is
// approximate when the other side is running concurrently: it is a count that
// was true at some instant during the call.
func (r *SPSC[T]) Len() int {
	// Load head first: head only grows and never passes tail, so
	// h <= head(now) <= tail(now) == t and t-h cannot underflow. It can
	// exceed size if the consumer advanced in between; clamp.
	h := r.head.Load()
	t := r.tail.Load()
	return int(min(t-h, r.size))
}

// ---- producer side ----

// writable returns how many slots are free at tail t, re-reading head only if
// the cached value shows fewer than want free. Producer only.
func (r *SPSC[T]) writable(t, want uint64) uint64 {
	free := r.cachedHead + r.size - t
	if free < want {
		r.cachedHead = r.head.Load()
		if invariants {
			r.checkIndices(r.cachedHead, t)
		}
		free = r.cachedHead + r.size - t
	}
	return free
}

// publishTail stores the new tail, publishing the slots written before it,
// then wakes the consumer if it is parked (step P1/P2 in the package doc).
func (r *SPSC[T]) publishTail(t uint64) {
	r.tail.Store(t)
	if r.consSleeping.Load() != 0 {
		r.wakeConsumer()
	}
}

// beginPush runs the checks common to every producer method that writes.
func (r *SPSC[T]) beginPush() {
	if r.closedLocal {
		panic("ring: push on closed ring")
	}
	if invariants {
		r.reserved = false
	}
}

// TryPush appends v if the ring is not full and reports whether it did.
// It never blocks. Producer only.
func (r *SPSC[T]) TryPush(v T) bool {
	r.beginPush()
	t := r.tail.Load()
	if r.writable(t, 1) == 0 {
		return false
	}
	r.buf[t&r.mask] = v
	r.publishTail(t + 1)
	return true
}

// PushBatch appends as many leading items of vs as fit and returns how many
// it appended (0 if the ring is full). It publishes them with a single store
// and never blocks. Producer only.
func (r *SPSC[T]) PushBatch(vs []T) int {
	r.beginPush()
	if len(vs) == 0 {
		return 0
	}
	t := r.tail.Load()
	n := min(r.writable(t, uint64(len(vs))), uint64(len(vs)))
	if n == 0 {
		return 0
	}
	r.write(t, vs[:n])
	r.publishTail(t + n)
	return int(n)
}

// write copies vs into the free slots starting at t. len(vs) must not exceed
// the free space, so the wrapped part fits below t&mask.
func (r *SPSC[T]) write(t uint64, vs []T) {
	k := copy(r.buf[t&r.mask:], vs)
	copy(r.buf, vs[k:])
}

// Reserve returns a pointer to the next free slot, or nil if the ring is
// full. The producer fills the slot in place and publishes it with Commit.
// The pointer is valid only until Commit or any other producer method; a
// reservation that is never committed is simply abandoned. It never blocks.
// Producer only.
func (r *SPSC[T]) Reserve() *T {
	r.beginPush()
	t := r.tail.Load()
	if r.writable(t, 1) == 0 {
		return nil
	}
	if invariants {
		r.reserved = true
	}
	return &r.buf[t&r.mask]
}

// Commit publishes the slot returned by the preceding Reserve (or
// ReserveWait). Calling it without such a reservation corrupts the ring; the
// invariants build panics instead. Producer only.
func (r *SPSC[T]) Commit() {
	if invariants {
		if !r.reserved {
			panic("ring: Commit without Reserve")
		}
		r.reserved = false
	}
	r.publishTail(r.tail.Load() + 1)
}

// ---- consumer side ----

// readable returns how many items are available at head h, re-reading tail
// only if the cached value shows fewer than want. Consumer only.
func (r *SPSC[T]) readable(h, want uint64) uint64 {
	n := r.cachedTail - h
	if n < want {
		r.cachedTail = r.tail.Load()
		if invariants {
			r.checkIndices(h, r.cachedTail)
		}
		n = r.cachedTail - h
	}
	return n
}

// publishHead stores the new head, handing the freed slots back to the
// producer, then wakes the producer if it is parked.
func (r *SPSC[T]) publishHead(h uint64) {
	r.head.Store(h)
	if r.prodSleeping.Load() != 0 {
		r.wakeProducer()
	}
}

// popOne removes the item at h, which must be available.
func (r *SPSC[T]) popOne(h uint64) T {
	if invariants {
		r.peeked = false
	}
	i := h & r.mask
	v := r.buf[i]
	if r.clearSlots {
		var zero T
		r.buf[i] = zero
	}
	r.publishHead(h + 1)
	return v
}

// popInto moves n available items starting at h into dst[:n].
func (r *SPSC[T]) popInto(h uint64, dst []T, n uint64) {
	if invariants {
		r.peeked = false
	}
	i := h & r.mask
	first := r.buf[i:min(i+n, r.size)]
	rest := r.buf[:n-uint64(len(first))]
	copy(dst, first)
	copy(dst[len(first):], rest)
	if r.clearSlots {
		clear(first)
		clear(rest)
	}
	r.publishHead(h + n)
}

// TryPop removes and returns the oldest item, or reports false if the ring
// is empty. It never blocks. Consumer only.
func (r *SPSC[T]) TryPop() (v T, ok bool) {
	h := r.head.Load()
	if r.readable(h, 1) == 0 {
		return v, false
	}
	return r.popOne(h), true
}

// PopBatch moves up to len(dst) of the oldest items into dst, frees their
// slots with a single store, and returns how many it moved (0 if the ring is
// empty). It never blocks. Consumer only.
func (r *SPSC[T]) PopBatch(dst []T) int {
	if len(dst) == 0 {
		return 0
	}
	h := r.head.Load()
	n := min(r.readable(h, uint64(len(dst))), uint64(len(dst)))
	if n == 0 {
		return 0
	}
	r.popInto(h, dst, n)
	return int(n)
}

// Peek returns a pointer to the oldest item without removing it, or nil if
// the ring is empty. The consumer may read (and modify) the item in place;
// Release frees it. The pointer is valid only until Release or any other
// consumer method. It never blocks. Consumer only.
func (r *SPSC[T]) Peek() *T {
	h := r.head.Load()
	if r.readable(h, 1) == 0 {
		return nil
	}
	if invariants {
		r.peeked = true
	}
	return &r.buf[h&r.mask]
}

// Release removes the item returned by the preceding Peek (or PeekWait),
// zeroing its slot if T may hold pointers. Calling it without such a Peek
// corrupts the ring; the invariants build panics instead. Consumer only.
func (r *SPSC[T]) Release() {
	if invariants && !r.peeked {
		panic("ring: Release without Peek")
	}
	r.popOne(r.head.Load())
}

// checkIndices panics unless h <= t <= h+size. Used only when invariants.
func (r *SPSC[T]) checkIndices(h, t uint64) {
	if t < h || t-h > r.size {
		panic(fmt.Sprintf("ring: invariant violated: head=%d tail=%d cap=%d", h, t, r.size))
	}
}

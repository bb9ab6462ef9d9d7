package ring

import "runtime"

// WaitStrategy says how a blocked side waits for the other. It first polls
// the ring Spins times, then calls runtime.Gosched and polls Yields times,
// then parks until the other side wakes it (see the package doc). After a
// wake-up it starts over with spinning, since the peer is active again.
//
// Spinning has the lowest wake-up latency but burns a CPU; parking costs a
// goroutine switch on both sides. With fewer CPUs than busy goroutines keep
// Spins small.
type WaitStrategy struct {
	Spins  int // polls before yielding
	Yields int // runtime.Gosched calls before parking
}

// DefaultWaitStrategy is used by New.
var DefaultWaitStrategy = WaitStrategy{Spins: 64, Yields: 8}

// wakeConsumer sends a wake-up if the consumer is still marked as sleeping.
// The Swap makes the producer send at most one token per park.
func (r *SPSC[T]) wakeConsumer() {
	if r.consSleeping.Swap(0) != 0 {
		select {
		case r.consWake <- struct{}{}:
		default: // a token is already pending; the consumer will see it
		}
	}
}

// wakeProducer sends a wake-up if the producer is still marked as sleeping.
func (r *SPSC[T]) wakeProducer() {
	if r.prodSleeping.Swap(0) != 0 {
		select {
		case r.prodWake <- struct{}{}:
		default:
		}
	}
}

// awaitSpace blocks until at least one slot is free at tail t and returns
// the number of free slots. Producer only.
func (r *SPSC[T]) awaitSpace(t uint64) uint64 {
	for i := 0; ; i++ {
		if n := r.writable(t, 1); n > 0 {
			return n
		}
		switch {
		case i < r.wait.Spins:
		case i < r.wait.Spins+r.wait.Yields:
			runtime.Gosched()
		default:
			// Dekker: announce sleep, then re-check (writable reloads
			// head because the cache says full). The consumer stores
			// head, then checks prodSleeping.
			if invariants && r.beforePark != nil {
				r.beforePark()
			}
			r.prodSleeping.Store(1)
			if r.writable(t, 1) == 0 {
				<-r.prodWake
			}
			r.prodSleeping.Store(0)
			i = -1
		}
	}
}

// awaitData blocks until at least one item is available at head h, or the
// ring is closed and drained. It returns the number of available items, 0
// meaning closed and drained. Consumer only.
func (r *SPSC[T]) awaitData(h uint64) uint64 {
	for i := 0; ; i++ {
		if n := r.readable(h, 1); n > 0 {
			return n
		}
		if r.closed.Load() {
			// Close stores closed after the last tail, so this
			// reload sees the final tail.
			return r.readable(h, 1)
		}
		switch {
		case i < r.wait.Spins:
		case i < r.wait.Spins+r.wait.Yields:
			runtime.Gosched()
		default:
			// Dekker: announce sleep, then re-check (readable reloads
			// tail because the cache says empty). The producer stores
			// tail or closed, then checks consSleeping.
			if invariants && r.beforePark != nil {
				r.beforePark()
			}
			r.consSleeping.Store(1)
			if r.readable(h, 1) == 0 && !r.closed.Load() {
				<-r.consWake
			}
			r.consSleeping.Store(0)
			i = -1
		}
	}
}

// Push appends v, blocking while the ring is full. It panics if the ring is
// closed. Producer only.
func (r *SPSC[T]) Push(v T) {
	r.beginPush()
	t := r.tail.Load()
	if r.writable(t, 1) == 0 {
		r.awaitSpace(t)
	}
	r.buf[t&r.mask] = v
	r.publishTail(t + 1)
}

// PushWait appends all of vs, blocking while the ring is full. Items are
// published in chunks as space frees up, so the consumer can start before
// the whole slice is in. It panics if the ring is closed. Producer only.
func (r *SPSC[T]) PushWait(vs []T) {
	r.beginPush()
	for len(vs) > 0 {
		t := r.tail.Load()
		free := r.writable(t, uint64(len(vs)))
		if free == 0 {
			free = r.awaitSpace(t)
		}
		n := min(free, uint64(len(vs)))
		r.write(t, vs[:n])
		r.publishTail(t + n)
		vs = vs[n:]
	}
}

// ReserveWait is like Reserve but blocks while the ring is full instead of
// returning nil. Producer only.
func (r *SPSC[T]) ReserveWait() *T {
	r.beginPush()
	t := r.tail.Load()
	if r.writable(t, 1) == 0 {
		r.awaitSpace(t)
	}
	if invariants {
		r.reserved = true
	}
	return &r.buf[t&r.mask]
}

// Close marks the end of the stream. Items already pushed stay poppable;
// once they are drained, the blocking consumer methods return ok == false.
// Any push after Close panics; an outstanding Reserve is abandoned. Closing
// twice is a no-op. Producer only.
func (r *SPSC[T]) Close() {
	if r.closedLocal {
		return
	}
	if invariants {
		r.reserved = false
	}
	r.closedLocal = true
	r.closed.Store(true)
	if r.consSleeping.Load() != 0 {
		r.wakeConsumer()
	}
}

// Closed reports whether Close has been called. Items may remain in the
// ring: a consumer polling with non-blocking methods is done when Closed
// returns true and then (checked in that order) Len returns 0. Any goroutine.
func (r *SPSC[T]) Closed() bool { return r.closed.Load() }

// Pop removes and returns the oldest item, blocking while the ring is empty.
// It returns ok == false once the ring is closed and drained. Consumer only.
func (r *SPSC[T]) Pop() (v T, ok bool) {
	h := r.head.Load()
	if r.readable(h, 1) == 0 && r.awaitData(h) == 0 {
		return v, false
	}
	return r.popOne(h), true
}

// PopWait moves up to len(dst) of the oldest items into dst, blocking until
// at least one is available, and returns how many it moved. It returns
// (0, false) once the ring is closed and drained, and (0, true) at once if
// len(dst) == 0. It does not wait to fill dst. Consumer only.
func (r *SPSC[T]) PopWait(dst []T) (n int, ok bool) {
	if len(dst) == 0 {
		return 0, true
	}
	h := r.head.Load()
	avail := r.readable(h, uint64(len(dst)))
	if avail == 0 {
		if avail = r.awaitData(h); avail == 0 {
			return 0, false
		}
	}
	m := min(avail, uint64(len(dst)))
	r.popInto(h, dst, m)
	return int(m), true
}

// PeekWait is like Peek but blocks while the ring is empty instead of
// returning nil. It returns (nil, false) once the ring is closed and
// drained. Consumer only.
func (r *SPSC[T]) PeekWait() (*T, bool) {
	h := r.head.Load()
	if r.readable(h, 1) == 0 && r.awaitData(h) == 0 {
		return nil, false
	}
	if invariants {
		r.peeked = true
	}
	return &r.buf[h&r.mask], true
}

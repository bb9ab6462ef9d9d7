// Package ring provides SPSC, a bounded, lock-free, allocation-free
// single-producer single-consumer ring buffer for handing values from exactly
// one producer goroutine to exactly one consumer goroutine with low latency.
//
// # What it owns
//
// An SPSC owns a power-of-two array of slots and two monotonically increasing
// uint64 counters, head and tail. A counter c addresses slot c & (cap-1);
// counters never wrap in practice (2^64 items at one per nanosecond take 584
// years).
//
//   - Slots [head, tail) hold published items. They belong to the consumer.
//   - Slots [tail, head+cap) are free. They belong to the producer.
//   - Invariant: head <= tail <= head+cap.
//
// Only the producer stores tail. A store of tail publishes every slot write
// the producer made before it: a consumer that loads the new tail sees those
// writes (Go atomics are sequentially consistent, so they are at least
// release/acquire). Only the consumer stores head. A store of head hands every
// slot below it back to the producer, after the consumer has finished reading
// (and zeroing) those slots.
//
// Each side also keeps a private cached copy of the other side's counter
// (the producer caches head, the consumer caches tail) and re-reads the shared
// counter only when its cache says the ring is full (producer) or empty
// (consumer). The fast path therefore touches only the caller's own cache line,
// the slots, and one read-mostly line holding the wake-up flags. Each
// group of fields is separated from the next by 128 bytes of padding so that
// neither false sharing nor the adjacent-line prefetcher couples them.
//
// # Who may call what
//
// Producer-only (one goroutine at a time): TryPush, PushBatch, Push,
// PushWait, Reserve, ReserveWait, Commit, Close.
//
// Consumer-only (one goroutine at a time): TryPop, PopBatch, Pop, PopWait,
// Peek, PeekWait, Release.
//
// Any goroutine: Len, Cap, Closed.
//
// The producer role (and likewise the consumer role) may move from one
// goroutine to another only if the hand-over is itself synchronized (a
// channel, a mutex, a WaitGroup ...); the role-local fields are plain memory.
//
// # Zero-copy slots
//
// Reserve returns a pointer to the next free slot; the producer fills it in
// place and Commit publishes it. Peek returns a pointer to the oldest item;
// the consumer reads it in place and Release frees it. Such a pointer is valid
// only until the matching Commit or Release (or until any other method of the
// same side is called): after that the slot belongs to the other goroutine.
//
// # Zeroing
//
// If the element type can hold pointers, slots are zeroed when popped or
// released, before they are handed back to the producer, so the ring never
// keeps consumed values reachable. Batch pops clear whole sub-ranges with one
// clear call. For pointer-free element types zeroing is skipped entirely.
//
// # Blocking
//
// Push, PushWait and ReserveWait block while the ring is full; Pop, PopWait
// and PeekWait block while it is empty and not closed. A blocked side follows
// a WaitStrategy: it polls a few times (spinning), then yields the processor
// with runtime.Gosched a few times, then parks on a one-slot channel.
//
// Parking costs the other side nothing while nobody is parked: after
// publishing its counter, the peer does one load of the "sleeping" flag and
// sends a wake-up only if the flag is set. The protocol (Dekker style) is,
// for a consumer waiting for data:
//
//	consumer                         producer
//	C1: sleeping.Store(1)            P1: tail.Store(t)  (or closed.Store(true))
//	C2: if tail.Load() == head &&    P2: if sleeping.Load() == 1 &&
//	       !closed.Load() {                 sleeping.Swap(0) == 1 {
//	        <-wake                           send on wake (non-blocking)
//	    }                                }
//	    sleeping.Store(0)
//
// A wake-up cannot be lost: Go atomics are sequentially consistent, so C1, C2,
// P1 and P2 occur in one total order. If C2 comes after P1 it sees the new
// tail (or closed) and does not park. Otherwise C1 < C2 < P1 < P2, so P2 sees
// sleeping == 1 (only the consumer sets it, and it clears it only after being
// woken or after C2 found work), wins the Swap, and puts a token in the
// one-slot channel, which the parked consumer receives. A token that arrives
// after the consumer already found work by itself stays in the channel and
// later causes one spurious wake-up, after which the waiter re-checks and parks
// again; waiters always re-check their condition in a loop. The producer
// waiting for space on a full ring uses the same protocol with head and a
// second flag and channel.
//
// Close is called by the producer after its last push. Blocking consumer
// methods return ok == false once the ring is closed and drained. Pushing
// after Close panics. The consumer cannot close the ring: if it stops
// draining, a blocked producer stays blocked.
//
// # Assertions
//
// Building with the tag "invariants" (or with -race) enables extra checks:
// head <= tail <= head+cap on every refresh of a counter, Commit without a
// preceding Reserve, and Release without a preceding Peek. They panic with a
// message prefixed "ring: ".
package ring

package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// ErrSeqOrder is wrapped by the error an Append callback gets when its
// seq is not above the room's last appended seq (the append is dropped;
// the rest of its batch commits).
var ErrSeqOrder = errors.New("state: room log seq not above the last appended seq")

// A Batcher collects writes (keyed puts and deletes, room log appends) and
// commits them together, one Badger transaction per batch, so that the
// engine can acknowledge a message only once it is on disk without paying
// one fsync per message.
//
// # Ownership
//
// A Batcher is meant to be owned by one goroutine (an engine shard worker,
// a pipeline executor): make one per owner. Its methods are nonetheless
// safe from any goroutine — an internal mutex, uncontended when one
// goroutine owns the Batcher, lets the interval timer and the committer
// hand batches over — so a write from a commit callback is allowed.
//
// # When a batch commits
//
// The writes queued since the last commit form the current batch. It is
// handed to the committer (a goroutine per Batcher) as soon as one of:
//   - it holds Options.BatchMax writes;
//   - the owner calls Flush (the engine calls it at the end of each ring
//     batch, so a batch is what one ring batch wrote);
//   - Options.BatchInterval has passed since its first write.
//
// The committer commits every batch handed over while it was busy in one
// transaction (group commit), so under load a commit carries what arrived
// during the previous one, and an idle system commits at once.
//
// # Ordering and completion
//
// Writes commit in the order they were queued. Each write's callback runs
// exactly once, after its commit: with nil once the write is durable
// (fsynced unless Options.NoSync) and visible to reads, or with the error
// that kept it from being written. Callbacks run on the committer
// goroutine, in queue order, one after the other: keep them short, and do
// not call Sync, Close or Store.Close from one (they wait for the
// committer); Put, Delete, Append and Flush are fine. When a method
// returns an error, the write was refused up front and its callback is
// never called. A nil callback is allowed (fire and forget; a failure is
// still counted in Store.Stats and logged).
//
// Two writes of one key in one batch leave the later one; both callbacks
// get nil. Writes through different Batchers (or Store.Put) are not
// ordered with respect to each other.
//
// # Failures
//
// A failed commit (disk error, ErrDiskFull, the store closing) reports its
// error to every callback of the writes it carried; the Batcher keeps
// going with the next batch, so a later write can succeed after an
// earlier one failed: the owner decides what a failure means (refuse the
// message, stop the room). Nothing is dropped silently. A batch larger
// than one Badger transaction allows (about 15% of Options.MemTableSize)
// is committed as several transactions in order, each with its own
// outcome: atomicity is per write, not per batch.
//
// Queuing never blocks on the disk: the queue of uncommitted writes is
// unbounded, and Pending reports its length so the owner can apply its
// backpressure policy.
type Batcher struct {
	s        *Store
	max      int
	interval time.Duration

	mu      sync.Mutex
	cur     *batch   // the batch being filled; nil when empty
	queue   []*batch // handed over, not yet taken by the committer
	free    []*batch // recycled batches
	closed  bool
	armed   bool // timer is set for cur
	timer   *time.Timer
	wake    chan struct{} // cap 1: work for the committer
	done    chan struct{} // closed when the committer exits
	pending atomic.Int64  // writes queued and not yet called back

	// committer-owned scratch
	ops      []*op
	owner    []*batch // owner[i] holds ops[i]'s bytes
	heads    map[string]*headState
	lastWarn time.Time
	failures int
}

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opAppend
	opBarrier
)

// op is one queued write; key and value live in the batch's arena.
type op struct {
	kind     opKind
	key, val span
	ttl      time.Duration
	seq      uint64
	cb       func(error)
	err      error
}

type span struct{ off, n uint32 }

func (s span) of(arena []byte) []byte { return arena[s.off : s.off+s.n : s.off+s.n] }

// batch: ops and the bytes they point into. Owned by the Batcher's mutex
// while filled, by the committer once handed over.
type batch struct {
	arena []byte
	ops   []op
}

func (bt *batch) put(b []byte) span {
	sp := span{uint32(len(bt.arena)), uint32(len(b))}
	bt.arena = append(bt.arena, b...)
	return sp
}

type headState struct {
	h      logHead
	exists bool
	dirty  bool
}

// maxFreeArena: batches whose arena grew beyond this are not recycled.
const maxFreeArena = 4 << 20

// NewBatcher returns a Batcher of s. Close it (or the Store) when done.
func (s *Store) NewBatcher() (*Batcher, error) {
	b := &Batcher{
		s:        s,
		max:      s.opts.BatchMax,
		interval: s.opts.BatchInterval,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		heads:    make(map[string]*headState),
	}
	s.mu.Lock()
	if s.closing || s.closed.Load() {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.batchers[b] = struct{}{}
	s.mu.Unlock()
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
	go b.committer()
	return b, nil
}

// Put queues key = value, expiring ttl (0: never; one-second granularity,
// never early) after its commit. key must come from Key/AppendKey; key and
// value are copied, the caller may reuse them at once.
func (b *Batcher) Put(key, value []byte, ttl time.Duration, cb func(error)) error {
	if !isKVKey(key) {
		return ErrBadKey
	}
	if ttl < 0 {
		return fmt.Errorf("state: negative TTL %v", ttl)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	bt := b.curLocked()
	bt.ops = append(bt.ops, op{kind: opPut, key: bt.put(key), val: bt.put(value), ttl: ttl, cb: cb})
	b.addedLocked(bt)
	b.mu.Unlock()
	return nil
}

// Delete queues the removal of key (see Put). Deletes are accepted even
// when the disk is nearly full.
func (b *Batcher) Delete(key []byte, cb func(error)) error {
	if !isKVKey(key) {
		return ErrBadKey
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	bt := b.curLocked()
	bt.ops = append(bt.ops, op{kind: opDelete, key: bt.put(key), cb: cb})
	b.addedLocked(bt)
	b.mu.Unlock()
	return nil
}

// Append queues entry seq of room's durable log with data (copied) and the
// commit's time (Options.Now, read once per commit). seq must be above
// every seq appended to room before (gaps are allowed); otherwise the
// callback gets an error wrapping ErrSeqOrder and nothing is written. The
// room's log metadata (last seq, count, bytes) is updated in the same
// transaction as the entry, so recovery never sees one without the other.
//
// Append each room through one Batcher (its shard's): appends to one room
// through two Batchers are still correct (they conflict and retry) but
// cost retries, and their order is whatever the commits make it.
func (b *Batcher) Append(room string, seq uint64, data []byte, cb func(error)) error {
	if err := checkRoom(room); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	bt := b.curLocked()
	kOff := len(bt.arena)
	bt.arena = appendLogKey(bt.arena, room, seq)
	vOff := len(bt.arena)
	bt.arena = binary.BigEndian.AppendUint64(bt.arena, 0) // time, set at commit
	bt.arena = append(bt.arena, data...)
	bt.ops = append(bt.ops, op{
		kind: opAppend,
		key:  span{uint32(kOff), uint32(vOff - kOff)},
		val:  span{uint32(vOff), uint32(len(bt.arena) - vOff)},
		seq:  seq,
		cb:   cb,
	})
	b.addedLocked(bt)
	b.mu.Unlock()
	return nil
}

// Flush hands the current batch to the committer now, without waiting
// for it to commit. Cheap when there is nothing to flush.
func (b *Batcher) Flush() {
	b.mu.Lock()
	if b.cur != nil {
		b.handOverLocked()
	}
	b.mu.Unlock()
}

// Sync hands the current batch over and waits until every write queued
// before it has been committed and called back. It returns the first
// error among the writes of the last commit round (earlier failures went
// to their callbacks), nil when they are all durable. Not from a callback.
func (b *Batcher) Sync() error {
	ch := make(chan error, 1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	bt := b.curLocked()
	bt.ops = append(bt.ops, op{kind: opBarrier, cb: func(err error) { ch <- err }})
	b.pending.Add(1)
	b.handOverLocked()
	b.mu.Unlock()
	return <-ch
}

// Pending returns the number of writes queued and not yet called back.
func (b *Batcher) Pending() int { return int(b.pending.Load()) }

// Close commits what is queued, waits for every callback, and stops the
// Batcher; later calls return ErrClosed. Idempotent. Not from a callback.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if b.cur != nil {
			b.handOverLocked()
		}
		b.timer.Stop()
		b.armed = false
		b.signal()
	}
	b.mu.Unlock()
	<-b.done
	b.s.mu.Lock()
	delete(b.s.batchers, b)
	b.s.mu.Unlock()
}

func (b *Batcher) curLocked() *batch {
	if b.cur == nil {
		if n := len(b.free); n > 0 {
			b.cur = b.free[n-1]
			b.free = b.free[:n-1]
		} else {
			b.cur = &batch{}
		}
	}
	return b.cur
}

// addedLocked: one write was added to bt (== b.cur).
func (b *Batcher) addedLocked(bt *batch) {
	b.pending.Add(1)
	if len(bt.ops) >= b.max {
		b.handOverLocked()
		return
	}
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.interval)
	}
}

func (b *Batcher) handOverLocked() {
	b.queue = append(b.queue, b.cur)
	b.cur = nil
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	b.signal()
}

func (b *Batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Batcher) onTimer() {
	b.mu.Lock()
	b.armed = false
	if b.cur != nil && !b.closed {
		b.handOverLocked()
	}
	b.mu.Unlock()
}

// committer takes every batch handed over and commits them in rounds.
func (b *Batcher) committer() {
	defer close(b.done)
	var take []*batch
	for {
		<-b.wake
		for {
			b.mu.Lock()
			take = append(take[:0], b.queue...)
			clear(b.queue)
			b.queue = b.queue[:0]
			closed := b.closed
			b.mu.Unlock()
			if len(take) == 0 {
				if closed {
					return
				}
				break
			}
			b.commitRound(take)
			b.mu.Lock()
			for _, bt := range take {
				if cap(bt.arena) <= maxFreeArena && len(b.free) < 4 {
					bt.arena = bt.arena[:0]
					clear(bt.ops)
					bt.ops = bt.ops[:0]
					b.free = append(b.free, bt)
				}
			}
			b.mu.Unlock()
			clear(take)
		}
	}
}

// commitRound commits the ops of bts, in order, in as few transactions as
// Badger's size limit allows, calling each op's callback after its
// transaction.
func (b *Batcher) commitRound(bts []*batch) {
	ops, owner := b.ops[:0], b.owner[:0]
	for _, bt := range bts {
		for i := range bt.ops {
			ops = append(ops, &bt.ops[i])
			owner = append(owner, bt)
		}
	}
	b.ops, b.owner = ops, owner
	// One clock read of each kind per round: Options.Now stamps log
	// entries; the wall clock anchors TTLs (Badger expires by it).
	stamp := uint64(b.s.opts.Now().UnixNano())
	wall := time.Now()
	var roundErr error
	for from := 0; from < len(ops); {
		to := b.partEnd(ops, from)
		err := b.commitPart(ops[from:to], owner[from:to], stamp, wall)
		for i := from; i < to; i++ {
			o := ops[i]
			if o.err == nil {
				o.err = err
			}
			if o.kind != opBarrier && o.err != nil && roundErr == nil {
				roundErr = o.err
			}
		}
		for i := from; i < to; i++ {
			o := ops[i]
			res := o.err
			if o.kind == opBarrier {
				res = roundErr
			}
			b.pending.Add(-1)
			if o.cb != nil {
				o.cb(res)
			}
		}
		from = to
	}
	clear(b.ops)
	clear(b.owner)
}

// partEnd returns the end of the longest run of ops from from that surely
// fits one Badger transaction (half of Badger's limits, counting one
// metadata entry per append).
func (b *Batcher) partEnd(ops []*op, from int) int {
	maxCount := b.s.db.MaxBatchCount() / 2
	maxSize := b.s.db.MaxBatchSize() / 2
	var count, size int64
	i := from
	for ; i < len(ops); i++ {
		o := ops[i]
		c, sz := int64(1), int64(o.key.n)+int64(o.val.n)+32
		if o.kind == opAppend {
			c, sz = 2, sz+int64(o.key.n)+64
		}
		if i > from && (count+c > maxCount || size+sz > maxSize) {
			break
		}
		count += c
		size += sz
	}
	return i
}

// commitPart commits ops in one transaction, retrying on conflict. An
// op-specific failure is left in op.err; the returned error is the
// transaction's.
func (b *Batcher) commitPart(ops []*op, owner []*batch, stamp uint64, wall time.Time) error {
	s := b.s
	writes := 0
	guarded := false
	for _, o := range ops {
		if o.kind != opBarrier {
			writes++
		}
		if o.kind == opPut || o.kind == opAppend {
			guarded = true
		}
	}
	if writes == 0 {
		return nil
	}
	err := b.tryCommitPart(ops, owner, stamp, wall, guarded)
	s.stats.commits.Add(1)
	s.stats.writes.Add(uint64(writes))
	if err != nil {
		s.stats.commitFailures.Add(1)
		b.failures++
		if time.Since(b.lastWarn) >= time.Second {
			s.log.Warn("state: batch commit failed; every write of the batch got the error",
				"writes", writes, "failed_commits_since_last_warning", b.failures, "err", err)
			b.lastWarn = time.Now()
			b.failures = 0
		}
	}
	return err
}

func (b *Batcher) tryCommitPart(ops []*op, owner []*batch, stamp uint64, wall time.Time, guarded bool) error {
	s := b.s
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if guarded {
		if err := s.space.check(); err != nil {
			return err
		}
	}
	if h := s.commitHook; h != nil {
		if err := h(); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := b.buildAndCommit(ops, owner, stamp, wall)
		if errors.Is(err, badger.ErrConflict) && attempt < maxRetries {
			s.stats.conflicts.Add(1)
			continue
		}
		if err != nil {
			return fmt.Errorf("state: commit: %w", err)
		}
		return nil
	}
}

func (b *Batcher) buildAndCommit(ops []*op, owner []*batch, stamp uint64, wall time.Time) error {
	txn := b.s.db.NewTransaction(true)
	defer txn.Discard()
	clear(b.heads)
	for i, o := range ops {
		o.err = nil
		arena := owner[i].arena
		switch o.kind {
		case opPut:
			e := badger.NewEntry(o.key.of(arena), o.val.of(arena))
			e.ExpiresAt = expiresAt(wall, o.ttl)
			o.err = txn.SetEntry(e)
		case opDelete:
			o.err = txn.Delete(o.key.of(arena))
		case opAppend:
			key := o.key.of(arena)
			room, _, _ := parseLogKey(key)
			hs := b.heads[string(room)]
			if hs == nil {
				hs = &headState{}
				item, err := txn.Get(headKeyBytes(room))
				switch {
				case err == nil:
					if err := item.Value(hs.h.unmarshal); err != nil {
						return err
					}
					hs.exists = true
				case !errors.Is(err, badger.ErrKeyNotFound):
					return err
				}
				b.heads[string(room)] = hs
			}
			if hs.exists && o.seq <= hs.h.Last {
				o.err = fmt.Errorf("%w: room %q seq %d, last %d", ErrSeqOrder, room, o.seq, hs.h.Last)
				continue
			}
			val := o.val.of(arena)
			binary.BigEndian.PutUint64(val, stamp)
			if o.err = txn.Set(key, val); o.err != nil {
				continue
			}
			if !hs.exists {
				hs.exists, hs.h.First = true, o.seq
			}
			hs.h.Last = o.seq
			hs.h.Count++
			hs.h.Bytes += uint64(len(val) - logEntryHdr)
			hs.dirty = true
		}
	}
	for room, hs := range b.heads {
		if hs.dirty {
			if err := txn.Set(headKey(room), hs.h.marshal()); err != nil {
				return err
			}
		}
	}
	return txn.Commit()
}

func headKeyBytes(room []byte) []byte { return append([]byte{tagLogHead}, room...) }

package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Session state: per-key sessions with an idle timeout, held in memory and
// persisted (through a Batcher) so that they survive a restart.
//
// # Record
//
// Each live session is one keyed-state record, Key(Namespace, key):
//
//	u8 version=1 | u64 firstSeen (unix ns) | u64 lastSeen (unix ns) | data
//
// written with a TTL of Idle+Grace from its commit (Badger's wall clock),
// and deleted when the session expires or is deleted.

// SessionOptions configure Store.NewSessions.
type SessionOptions struct {
	// Namespace is the keyed-state namespace of the sessions' records,
	// e.g. "sess:pipelineX". Required; give each Sessions its own: Load
	// takes every record of the namespace as one of its sessions.
	Namespace string
	// Idle is the idle timeout: a session not touched for Idle expires.
	// Required, positive.
	Idle time.Duration
	// Grace is how long after its idle timeout a session's record is
	// kept in the store: a process down for less than that still finds
	// the session at Load and expires it (OnExpire) at the next Advance;
	// one down for longer finds nothing. The record's TTL is Idle+Grace.
	// Default Idle; at least Idle/4 (the lag of a throttled lastSeen).
	Grace time.Duration
	// Batcher carries the records' writes and deletes. Required; a
	// Batcher of the same Store, which the caller owns and closes.
	Batcher *Batcher
	// OnExpire, when set, is called for each session that expires (idle
	// timeout or MaxSessions eviction, not Delete), on the owner goroutine,
	// from the call that expires it (Advance, or Touch: see there). data
	// aliases the Sessions' memory and is valid only during the call. It
	// must not call methods of this Sessions (they panic).
	OnExpire func(key string, data []byte, firstSeen, lastSeen time.Time)
	// Now is the clock of lastSeen and of the idle timeout. Default
	// time.Now. Sessions never lets it go backwards: a reading earlier
	// than one it already made counts as that one.
	Now func() time.Time
	// MaxSessions bounds the sessions held: creating one beyond it
	// expires the least recently touched (OnExpire is called) at once.
	// 0: no limit.
	MaxSessions int
}

// EnsureDefaults fills the zero fields that have defaults.
func (o *SessionOptions) EnsureDefaults() {
	if o.Grace == 0 {
		o.Grace = o.Idle
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid field (call EnsureDefaults first).
func (o *SessionOptions) Validate() error {
	switch {
	case o.Namespace == "":
		return errors.New("state: SessionOptions.Namespace is empty: set the namespace of the sessions' records (e.g. \"sess:<pipeline>\")")
	case len(o.Namespace) > maxNameLen:
		return fmt.Errorf("state: SessionOptions.Namespace is %d bytes long: it must be at most %d", len(o.Namespace), maxNameLen)
	case o.Idle <= 0:
		return fmt.Errorf("state: SessionOptions.Idle is %v: set a positive idle timeout", o.Idle)
	case o.Grace < o.Idle/4:
		return fmt.Errorf("state: SessionOptions.Grace is %v: it must be at least Idle/4 (%v); 0 means Idle", o.Grace, o.Idle/4)
	case o.Batcher == nil:
		return errors.New("state: SessionOptions.Batcher is nil: set the Batcher that carries the sessions' writes")
	case o.MaxSessions < 0 || o.MaxSessions >= math.MaxInt32:
		return fmt.Errorf("state: SessionOptions.MaxSessions is %d: it must be between 0 (no limit) and %d", o.MaxSessions, math.MaxInt32-1)
	}
	return nil
}

// Sessions holds per-key sessions with an idle timeout (see
// SessionOptions), in memory for speed and in the Store for restarts.
//
// # Ownership
//
// Every method except Err belongs to one owner goroutine (the shard worker
// or executor that owns the Batcher): Sessions has no lock. Err is safe
// from any goroutine.
//
// # Lifetime of a session
//
// Touch creates a session or refreshes it (lastSeen = now). A session idle
// for Idle or more expires at the next Advance: OnExpire runs, then the
// session is removed from memory and its record's delete is queued. Until
// then Get still returns it, and a Touch of it expires it first (OnExpire,
// from Touch) and starts a new session, so a session never spans a gap of
// Idle. Delete removes a session without OnExpire.
//
// # Durability
//
// Writes go through the Batcher: durable when it commits them, not when
// Touch returns. To keep write volume sane, a refresh that does not change
// the data is written at most once per Idle/4 per key, so after a crash a
// restored session's lastSeen can be up to Idle/4 old, and it expires up
// to Idle/4 early. A failed write (refused by the Batcher or failed at
// commit) is kept in Err; the in-memory state goes on regardless.
//
// # Cost and memory
//
// Sessions sharing one idle timeout expire in lastSeen order, so the
// expiry queue is a list ordered by lastSeen: Touch moves a session to its
// end in O(1) and Advance pops from its front, in time proportional to the
// sessions that expire, not to those held. The same list gives the least
// recently touched session for MaxSessions.
//
// Per session, memory holds one 48-byte slot (no pointers) in one slice,
// the session's key and data in one shared byte arena (compacted when more
// than half of it is garbage), and an entry of a map[string]int32 from key
// to slot (the key string is the one given to the Touch that created the
// session). BenchmarkSessions1M measures it.
type Sessions struct {
	store    *Store
	b        *Batcher
	onExpire func(key string, data []byte, firstSeen, lastSeen time.Time)
	now      func() time.Time
	idle     int64 // ns
	throttle int64 // ns: minimum lastSeen age of a refresh-only write
	ttl      time.Duration
	max      int
	prefix   []byte // Key(Namespace, "")
	maxKey   int    // longest key Badger accepts after prefix

	index map[string]int32 // key -> slot
	slots []sessionSlot
	free  int32 // first free slot (linked by next), -1 when none
	head  int32 // least recently touched live slot, -1 when none
	tail  int32 // most recently touched live slot, -1 when none
	n     int   // live sessions

	arena      []byte // key then data of each live slot, and garbage
	garbage    int    // bytes of arena no live slot points at
	compactMin int    // garbage below this never triggers a compaction

	clock    int64 // latest Now reading (unix ns): never goes back
	inExpire bool  // OnExpire is running
	kbuf     []byte
	vbuf     []byte
	onWrite  func(error) // s.writeDone, bound once

	errMu sync.Mutex
	err   error
}

// sessionSlot is one session in memory; no pointers, so the slots slice
// costs the garbage collector nothing to scan.
type sessionSlot struct {
	first int64 // firstSeen, unix ns
	last  int64 // lastSeen, unix ns; slots are listed in this order
	saved int64 // lastSeen of the last record queued for the store
	off   int64 // arena offset: klen key bytes, then dlen data bytes
	dlen  uint32
	prev  int32 // list neighbours, -1 at the ends; next links free slots
	next  int32
	klen  uint16
}

const (
	sessionVersion = 1
	sessionHdr     = 1 + 8 + 8
	badgerMaxKey   = 65000 // Badger's limit on a whole key
	// defaultCompactMin: arena garbage below 1 MiB is never compacted.
	defaultCompactMin = 1 << 20
)

// NewSessions returns an empty Sessions over opts.Namespace of s. Call
// Load before any Touch to take up the sessions a previous run left.
func (s *Store) NewSessions(opts SessionOptions) (*Sessions, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Batcher.s != s {
		return nil, errors.New("state: SessionOptions.Batcher belongs to another Store: use a Batcher of this one")
	}
	ss := &Sessions{
		store:      s,
		b:          opts.Batcher,
		onExpire:   opts.OnExpire,
		now:        opts.Now,
		idle:       int64(opts.Idle),
		throttle:   int64(opts.Idle / 4),
		ttl:        opts.Idle + opts.Grace,
		max:        opts.MaxSessions,
		prefix:     Key(opts.Namespace, ""),
		index:      make(map[string]int32),
		free:       -1,
		head:       -1,
		tail:       -1,
		compactMin: defaultCompactMin,
	}
	ss.maxKey = min(badgerMaxKey-len(ss.prefix), math.MaxUint16)
	ss.onWrite = ss.writeDone
	return ss, nil
}

// Touch creates the session of key or refreshes it: lastSeen = now, and
// its data replaced by data unless data is nil (data is copied). A new
// session starts with data (nil: empty). It queues the session's record
// when the session is new, its data changed, or its last queued record is
// Idle/4 old or more. A session idle for Idle or more that Advance has
// not expired yet is expired first (OnExpire runs from Touch), and key
// starts a new one. With MaxSessions set, a new session beyond it expires
// the least recently touched one.
//
// A key longer than Badger allows (65000 bytes less the namespace's
// prefix) is refused: Err reports it and nothing changes.
func (s *Sessions) Touch(key string, data []byte) {
	s.enter()
	now := s.tick()
	i, ok := s.index[key]
	if ok && now-s.slots[i].last >= s.idle {
		s.expire(i)
		ok = false
	}
	if !ok {
		s.create(key, data, now)
		return
	}
	e := &s.slots[i]
	e.last = now
	s.moveToTail(i)
	changed := false
	if data != nil && !bytes.Equal(data, s.dataOf(e)) {
		s.setData(i, data)
		changed = true
	}
	if changed || now-e.saved >= s.throttle {
		s.persist(i)
	}
}

func (s *Sessions) create(key string, data []byte, now int64) {
	if len(key) > s.maxKey {
		s.setErr(fmt.Errorf("state: session key of %d bytes is longer than %d (Badger's key limit less the namespace)", len(key), s.maxKey))
		return
	}
	i := s.alloc()
	e := &s.slots[i]
	*e = sessionSlot{first: now, last: now, off: int64(len(s.arena)), klen: uint16(len(key)), dlen: uint32(len(data)), prev: -1, next: -1}
	s.arena = append(s.arena, key...)
	s.arena = append(s.arena, data...)
	s.index[key] = i
	s.pushTail(i)
	s.n++
	s.persist(i)
	for s.max > 0 && s.n > s.max {
		s.expire(s.head) // never i: it is the tail and max >= 1
	}
}

// Get returns a copy of the data of key's session, and whether it is held
// (see Touch about sessions idle past Idle). It does not refresh it.
func (s *Sessions) Get(key string) (data []byte, ok bool) {
	i, ok := s.index[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(s.dataOf(&s.slots[i])), true
}

// AppendData appends the data of key's session to dst and returns the
// extended slice and whether the session is held; it allocates nothing
// when dst has room.
func (s *Sessions) AppendData(dst []byte, key string) ([]byte, bool) {
	i, ok := s.index[key]
	if !ok {
		return dst, false
	}
	return append(dst, s.dataOf(&s.slots[i])...), true
}

// Delete removes key's session, if held, and queues its record's delete;
// OnExpire is not called.
func (s *Sessions) Delete(key string) {
	s.enter()
	if i, ok := s.index[key]; ok {
		s.remove(i, key)
	}
}

// Len returns the number of sessions held, those idle past Idle that
// Advance has not expired yet included.
func (s *Sessions) Len() int { return s.n }

// Advance expires every session idle for Idle or more (and, with
// MaxSessions, the least recently touched beyond it), oldest first: for
// each, OnExpire, then its removal and its record's delete queued.
func (s *Sessions) Advance() {
	s.enter()
	now := s.tick()
	for s.head >= 0 && now-s.slots[s.head].last >= s.idle {
		s.expire(s.head)
	}
	for s.max > 0 && s.n > s.max {
		s.expire(s.head)
	}
}

// Load reads the sessions that the namespace's records hold (those a
// previous run left, whose TTL has not passed) into memory, with their
// persisted firstSeen, lastSeen and data; times later than now are taken
// as now. Those already idle for Idle expire at the next Advance, so
// OnExpire also fires for sessions whose timeout passed while the process
// was down. Call it once, before any Touch; it fails if sessions are held
// or a record cannot be decoded (then nothing is loaded).
func (s *Sessions) Load() error {
	s.enter()
	if s.n > 0 {
		return fmt.Errorf("state: Sessions.Load with %d sessions held: call it before any Touch", s.n)
	}
	now := s.tick()
	var loaded []int32
	var bad error
	err := s.store.Scan(s.prefix, func(k, v []byte) bool {
		_, key, _ := SplitKey(k)
		if len(v) < sessionHdr || v[0] != sessionVersion || len(key) > s.maxKey {
			bad = fmt.Errorf("state: session record %q in namespace %q is not one Sessions wrote (version %d, %d bytes): remove it or use another SessionOptions.Namespace", key, k[3:len(k)-len(key)], v[0:min(len(v), 1)], len(v))
			return false
		}
		first := min(int64(binary.BigEndian.Uint64(v[1:])), now)
		last := min(int64(binary.BigEndian.Uint64(v[9:])), now)
		data := v[sessionHdr:]
		i := s.alloc()
		s.slots[i] = sessionSlot{first: first, last: last, saved: last, off: int64(len(s.arena)), klen: uint16(len(key)), dlen: uint32(len(data)), prev: -1, next: -1}
		s.arena = append(s.arena, key...)
		s.arena = append(s.arena, data...)
		s.index[string(key)] = i
		loaded = append(loaded, i)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		s.reset()
		return err
	}
	slices.SortStableFunc(loaded, func(a, b int32) int { return cmp.Compare(s.slots[a].last, s.slots[b].last) })
	for _, i := range loaded {
		s.pushTail(i)
	}
	s.n = len(loaded)
	return nil
}

// Err returns the first write of the sessions' records that failed
// (refused by the Batcher or failed at commit), or nil. Safe from any
// goroutine.
func (s *Sessions) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *Sessions) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// writeDone is the callback of every write (on the committer goroutine).
func (s *Sessions) writeDone(err error) {
	if err != nil {
		s.setErr(err)
	}
}

func (s *Sessions) enter() {
	if s.inExpire {
		panic("state: Sessions method called from OnExpire")
	}
}

// tick reads the clock, never going back.
func (s *Sessions) tick() int64 {
	if t := s.now().UnixNano(); t > s.clock {
		s.clock = t
	}
	return s.clock
}

func (s *Sessions) keyOf(e *sessionSlot) []byte {
	return s.arena[e.off : e.off+int64(e.klen)]
}

// dataOf aliases the arena: valid until the next change of the Sessions.
func (s *Sessions) dataOf(e *sessionSlot) []byte {
	o := e.off + int64(e.klen)
	return s.arena[o : o+int64(e.dlen) : o+int64(e.dlen)]
}

// setData replaces the data of slot i: in place when the length is the
// same, else key and data move to the arena's end.
func (s *Sessions) setData(i int32, data []byte) {
	e := &s.slots[i]
	if int(e.dlen) == len(data) {
		copy(s.dataOf(e), data)
		return
	}
	n := int64(e.klen) + int64(e.dlen)
	off := int64(len(s.arena))
	s.arena = append(s.arena, s.arena[e.off:e.off+int64(e.klen)]...)
	s.arena = append(s.arena, data...)
	s.garbage += int(n)
	e.off, e.dlen = off, uint32(len(data))
	s.maybeCompact()
}

// maybeCompact rewrites the arena with only the live slots' bytes once
// garbage is more than half of it: amortised O(1) per garbage byte.
func (s *Sessions) maybeCompact() {
	if s.garbage < s.compactMin || s.garbage*2 < len(s.arena) {
		return
	}
	live := len(s.arena) - s.garbage
	na := make([]byte, 0, live+live/4)
	for i := s.head; i >= 0; i = s.slots[i].next {
		e := &s.slots[i]
		n := int64(e.klen) + int64(e.dlen)
		off := int64(len(na))
		na = append(na, s.arena[e.off:e.off+n]...)
		e.off = off
	}
	s.arena, s.garbage = na, 0
}

// persist queues slot i's record.
func (s *Sessions) persist(i int32) {
	e := &s.slots[i]
	s.kbuf = append(append(s.kbuf[:0], s.prefix...), s.keyOf(e)...)
	v := append(s.vbuf[:0], sessionVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(e.first))
	v = binary.BigEndian.AppendUint64(v, uint64(e.last))
	s.vbuf = append(v, s.dataOf(e)...)
	if err := s.b.Put(s.kbuf, s.vbuf, s.ttl, s.onWrite); err != nil {
		s.setErr(err)
	}
	e.saved = e.last
}

// expire calls OnExpire for slot i, then removes it.
func (s *Sessions) expire(i int32) {
	e := &s.slots[i]
	key := string(s.keyOf(e))
	if s.onExpire != nil {
		s.callOnExpire(key, s.dataOf(e), e.first, e.last)
	}
	s.remove(i, key)
}

func (s *Sessions) callOnExpire(key string, data []byte, first, last int64) {
	s.inExpire = true
	defer func() { s.inExpire = false }()
	s.onExpire(key, data, time.Unix(0, first), time.Unix(0, last))
}

// remove drops slot i (of key) and queues its record's delete.
func (s *Sessions) remove(i int32, key string) {
	e := &s.slots[i]
	s.kbuf = append(append(s.kbuf[:0], s.prefix...), key...)
	if err := s.b.Delete(s.kbuf, s.onWrite); err != nil {
		s.setErr(err)
	}
	delete(s.index, key)
	s.unlink(i)
	s.garbage += int(e.klen) + int(e.dlen)
	*e = sessionSlot{next: s.free}
	s.free = i
	s.n--
	s.maybeCompact()
}

func (s *Sessions) alloc() int32 {
	if i := s.free; i >= 0 {
		s.free = s.slots[i].next
		return i
	}
	if len(s.slots) >= math.MaxInt32 {
		panic("state: more than 2^31-1 sessions")
	}
	s.slots = append(s.slots, sessionSlot{})
	return int32(len(s.slots) - 1)
}

func (s *Sessions) pushTail(i int32) {
	e := &s.slots[i]
	e.prev, e.next = s.tail, -1
	if s.tail >= 0 {
		s.slots[s.tail].next = i
	} else {
		s.head = i
	}
	s.tail = i
}

func (s *Sessions) unlink(i int32) {
	e := &s.slots[i]
	if e.prev >= 0 {
		s.slots[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.slots[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *Sessions) moveToTail(i int32) {
	if s.tail == i {
		return
	}
	s.unlink(i)
	s.pushTail(i)
}

// reset empties the in-memory state (a failed Load).
func (s *Sessions) reset() {
	s.index = make(map[string]int32)
	s.slots, s.arena = nil, nil
	s.free, s.head, s.tail = -1, -1, -1
	s.n, s.garbage = 0, 0
}

package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Log is the durable room log of a Store: per room, entries keyed by seq,
// each with its data and append time. Entries are written by
// Batcher.Append; Log reads them, and trims them by retention. Every
// method is safe for concurrent use, including with appends.
type Log struct{ s *Store }

// Log returns the store's room log.
func (s *Store) Log() *Log { return &Log{s} }

// RoomStat describes what a room's log holds.
type RoomStat struct {
	First uint64 // oldest retained seq; meaningful only when Count > 0
	Last  uint64 // latest appended seq (kept when everything is trimmed)
	Count uint64 // entries retained
	Bytes uint64 // data bytes retained (headers and keys not counted)
}

// Retention bounds a room's log; Trim removes the oldest entries until
// every bound holds. A zero field is no bound.
type Retention struct {
	MaxCount int           // keep at most this many entries
	MaxAge   time.Duration // drop entries appended longer ago (by Options.Now)
	MaxBytes int64         // keep at most this many data bytes
}

func (r Retention) zero() bool { return r.MaxCount <= 0 && r.MaxAge <= 0 && r.MaxBytes <= 0 }

// readMeta reads a room's head and tail in txn. ok: the room has a log.
func readMeta(txn *badger.Txn, room string) (h logHead, t logTail, ok bool, err error) {
	item, err := txn.Get(headKey(room))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return h, t, false, nil
	}
	if err != nil {
		return h, t, false, err
	}
	if err := item.Value(h.unmarshal); err != nil {
		return h, t, false, err
	}
	item, err = txn.Get(tailKey(room))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return h, t, true, nil
	case err != nil:
		return h, t, false, err
	}
	if err := item.Value(t.unmarshal); err != nil {
		return h, t, false, err
	}
	return h, t, true, nil
}

// view runs fn in a read-only transaction of the store.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return fn(txn)
}

// Stat returns what room's log holds; ok is false when room has no log
// (never appended, or deleted by DeleteRoom). It reads two metadata keys
// and, when entries are retained, seeks to the oldest one.
func (l *Log) Stat(room string) (st RoomStat, ok bool, err error) {
	err = l.s.view(func(txn *badger.Txn) error {
		h, t, found, err := readMeta(txn, room)
		if err != nil || !found {
			return err
		}
		ok = true
		st.Last, st.Count, st.Bytes = h.Last, h.Count-t.Count, h.Bytes-t.Bytes
		if st.Count == 0 {
			st.First = h.Last + 1
			return nil
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: appendRoomPrefix(nil, room)})
		defer it.Close()
		it.Seek(appendLogKey(nil, room, max(h.First, t.Through+1)))
		if !it.Valid() {
			return fmt.Errorf("room %q: metadata counts %d entries but none is stored", room, st.Count)
		}
		_, st.First, _ = parseLogKey(it.Item().Key())
		return nil
	})
	if err != nil {
		return RoomStat{}, false, fmt.Errorf("state: log stat %q: %w", room, err)
	}
	return st, ok, nil
}

// LastSeq returns the latest seq appended to room — for the engine to
// resume numbering at startup. ok is false when room has no log. The last
// seq stays known when retention has removed every entry.
func (l *Log) LastSeq(room string) (seq uint64, ok bool, err error) {
	err = l.s.view(func(txn *badger.Txn) error {
		h, _, found, err := readMeta(txn, room)
		seq, ok = h.Last, found
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("state: log last seq %q: %w", room, err)
	}
	return seq, ok, nil
}

// FirstSeq returns the oldest retained seq of room; ok is false when room
// retains no entry.
func (l *Log) FirstSeq(room string) (seq uint64, ok bool, err error) {
	st, found, err := l.Stat(room)
	if err != nil || !found || st.Count == 0 {
		return 0, false, err
	}
	return st.First, true, nil
}

// Range calls fn for each retained entry of room with fromSeq ≤ seq ≤
// toSeq (math.MaxUint64: to the end), in seq order, until fn returns
// false. data aliases Badger memory, valid only during fn: copy what you
// keep. Range reads one snapshot: appends committed after it began are
// not seen. fn may call other Store methods.
func (l *Log) Range(room string, fromSeq, toSeq uint64, fn func(seq uint64, data []byte) bool) error {
	err := l.s.view(func(txn *badger.Txn) error {
		_, t, found, err := readMeta(txn, room)
		if err != nil || !found {
			return err
		}
		start := max(fromSeq, t.Through+1) // skip trimmed entries' tombstones
		if start > toSeq {
			return nil
		}
		prefix := appendRoomPrefix(nil, room)
		// Values are small and live in the LSM tree with their keys, so
		// Badger's value prefetch (a goroutine per item) would only slow
		// this down; the iterator still reads ahead by blocks.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		// One value callback for the whole walk (a closure per item
		// would allocate per item).
		w := rangeWalk{room: room, fn: fn, cont: true}
		value := w.value
		for it.Seek(appendLogKey(nil, room, start)); it.Valid(); it.Next() {
			item := it.Item()
			_, seq, ok := parseLogKey(item.Key())
			if !ok {
				return fmt.Errorf("room %q: malformed log key %x", room, item.Key())
			}
			if seq > toSeq {
				return nil
			}
			w.seq = seq
			if err := item.Value(value); err != nil {
				return err
			}
			if !w.cont {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: log range %q: %w", room, err)
	}
	return nil
}

// rangeWalk is Range's per-walk state.
type rangeWalk struct {
	room string
	seq  uint64
	fn   func(seq uint64, data []byte) bool
	cont bool
}

func (w *rangeWalk) value(v []byte) error {
	if len(v) < logEntryHdr {
		return fmt.Errorf("room %q seq %d: malformed entry of %d bytes", w.room, w.seq, len(v))
	}
	w.cont = w.fn(w.seq, v[logEntryHdr:])
	return nil
}

// Rooms returns every room that has a log, in byte order.
func (l *Log) Rooms() ([]string, error) {
	var rooms []string
	err := l.s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagLogHead}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			rooms = append(rooms, string(it.Item().Key()[1:]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: log rooms: %w", err)
	}
	return rooms, nil
}

// trimChunk bounds the deletes of one trim transaction.
const trimChunk = 10_000

// Trim removes room's oldest entries until r holds, and returns how many
// it removed. It commits in transactions of up to 10,000 deletes, each
// also updating the room's metadata, so an interrupted Trim leaves a
// consistent (partly trimmed) log. It runs beside appends to the same
// room without conflicting with them; concurrent Trims of one room retry.
// Trim is accepted when the disk is nearly full.
func (l *Log) Trim(room string, r Retention) (removed uint64, err error) {
	if r.MaxCount < 0 || r.MaxBytes < 0 || r.MaxAge < 0 {
		return 0, fmt.Errorf("state: trim %q: negative Retention %+v", room, r)
	}
	if r.zero() {
		return 0, nil
	}
	return l.trim(room, r, false)
}

// TrimAll trims every room: policy returns the Retention of a room (zero:
// leave it). It returns the entries removed in all rooms, and stops at the
// first error.
func (l *Log) TrimAll(policy func(room string) Retention) (removed uint64, err error) {
	rooms, err := l.Rooms()
	if err != nil {
		return 0, err
	}
	for _, room := range rooms {
		n, err := l.Trim(room, policy(room))
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// DeleteRoom removes room's log: every entry, then its metadata (LastSeq
// then reports no log). It returns the entries removed. Appends to room
// racing with DeleteRoom may survive it; stop them first.
func (l *Log) DeleteRoom(room string) (removed uint64, err error) {
	for {
		n, err := l.trim(room, Retention{}, true)
		removed += n
		if err != nil {
			return removed, err
		}
		err = l.s.update(false, func(txn *badger.Txn) error {
			h, t, found, err := readMeta(txn, room)
			if err != nil || !found {
				return err
			}
			if h.Count != t.Count {
				return userError{errReplan} // appended meanwhile: trim again
			}
			if err := txn.Delete(headKey(room)); err != nil {
				return err
			}
			return txn.Delete(tailKey(room))
		})
		switch {
		case errors.Is(err, errReplan):
			continue
		case err != nil:
			return removed, fmt.Errorf("state: delete room %q: %w", room, err)
		}
		return removed, nil
	}
}

// trim removes a prefix of room's entries: those r marks, or all.
func (l *Log) trim(room string, r Retention, all bool) (removed uint64, err error) {
	if err := checkRoom(room); err != nil {
		return 0, err
	}
	// Deletes per transaction: trimChunk, or fewer where Badger's
	// transaction limits (a share of MemTableSize) are smaller.
	chunk := min(trimChunk,
		int(l.s.db.MaxBatchCount()/2),
		int(l.s.db.MaxBatchSize()/2/int64(len(room)+64)))
	cutoff := int64(0)
	if r.MaxAge > 0 {
		cutoff = l.s.opts.Now().Add(-r.MaxAge).UnixNano()
	}
	for {
		// Plan in a read-only snapshot: it records no reads, so appends
		// (which write the head) cannot make it conflict.
		var (
			keys    [][]byte
			through uint64
			planned logTail
			nBytes  uint64
			found   bool
		)
		err := l.s.view(func(txn *badger.Txn) error {
			h, t, ok, err := readMeta(txn, room)
			if err != nil || !ok {
				return err
			}
			found, planned = true, t
			count, bytes := h.Count-t.Count, h.Bytes-t.Bytes
			it := txn.NewIterator(badger.IteratorOptions{Prefix: appendRoomPrefix(nil, room)})
			defer it.Close()
			for it.Seek(appendLogKey(nil, room, max(h.First, t.Through+1))); it.Valid() && len(keys) < chunk; it.Next() {
				item := it.Item()
				_, seq, ok := parseLogKey(item.Key())
				if !ok {
					return fmt.Errorf("malformed log key %x", item.Key())
				}
				// The exact size needs the value (ValueSize only estimates
				// one kept in the value log); for the small values of the
				// LSM tree reading it costs no copy.
				var size uint64
				var stamp int64
				if err := item.Value(func(v []byte) error {
					if len(v) < logEntryHdr {
						return fmt.Errorf("seq %d: malformed entry of %d bytes", seq, len(v))
					}
					size, stamp = uint64(len(v)-logEntryHdr), int64(binary.BigEndian.Uint64(v))
					return nil
				}); err != nil {
					return err
				}
				n := uint64(len(keys))
				over := all ||
					(r.MaxCount > 0 && count-n > uint64(r.MaxCount)) ||
					(r.MaxBytes > 0 && bytes-nBytes > uint64(r.MaxBytes)) ||
					(cutoff != 0 && stamp < cutoff)
				if !over {
					break
				}
				keys = append(keys, item.KeyCopy(nil))
				nBytes += size
				through = seq
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("state: trim %q: %w", room, err)
		}
		if !found || len(keys) == 0 {
			return removed, nil
		}
		err = l.s.update(false, func(txn *badger.Txn) error {
			_, t, ok, err := readMeta(txn, room)
			if err != nil {
				return err
			}
			if !ok || t != planned {
				return userError{errReplan} // another trim or delete got there first
			}
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			t.Through = through
			t.Count += uint64(len(keys))
			t.Bytes += nBytes
			return txn.Set(tailKey(room), t.marshal())
		})
		switch {
		case errors.Is(err, errReplan):
			l.s.stats.conflicts.Add(1)
			continue
		case err != nil:
			return removed, fmt.Errorf("state: trim %q: %w", room, err)
		}
		removed += uint64(len(keys))
		if len(keys) < chunk {
			return removed, nil
		}
	}
}

// errReplan: the log changed under a trim's plan; plan again.
var errReplan = errors.New("state: trim plan outdated")

// Rewrite replaces the data of room's retained entries for which fn
// returns a replacement (fn gets each entry's data, aliasing Badger
// memory; change false leaves it). Each entry keeps its seq and append
// time, so replay and retention see the same log; the room's byte counts
// are not adjusted (retention by bytes stays conservative). It commits in
// chunks, each one transaction, and skips entries trimmed meanwhile. It
// returns how many entries it changed. Use it to erase data (a
// data-protection request) without opening a gap in the seqs.
func (l *Log) Rewrite(room string, fn func(seq uint64, data []byte) (replacement []byte, change bool)) (changed int, err error) {
	if err := checkRoom(room); err != nil {
		return 0, err
	}
	type rw struct {
		seq  uint64
		data []byte
	}
	var todo []rw
	err = l.Range(room, 0, ^uint64(0), func(seq uint64, data []byte) bool {
		if nd, ok := fn(seq, data); ok {
			todo = append(todo, rw{seq, append([]byte(nil), nd...)})
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for len(todo) > 0 {
		n := min(len(todo), trimChunk/10)
		part := todo[:n]
		todo = todo[n:]
		done := 0
		err := l.s.update(false, func(txn *badger.Txn) error {
			done = 0
			for _, w := range part {
				key := appendLogKey(nil, room, w.seq)
				item, err := txn.Get(key)
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue // trimmed meanwhile
				}
				if err != nil {
					return err
				}
				v := make([]byte, logEntryHdr, logEntryHdr+len(w.data))
				if err := item.Value(func(old []byte) error {
					if len(old) < logEntryHdr {
						return fmt.Errorf("seq %d: malformed entry of %d bytes", w.seq, len(old))
					}
					copy(v, old[:logEntryHdr])
					return nil
				}); err != nil {
					return err
				}
				if err := txn.Set(key, append(v, w.data...)); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			return changed, fmt.Errorf("state: rewrite log %q: %w", room, err)
		}
		changed += done
	}
	return changed, nil
}

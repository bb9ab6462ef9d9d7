package state

import (
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/vmihailenco/msgpack/v5"
)

// Keyed state: direct, synchronous calls. Each write here is its own
// Badger transaction, committed (and fsynced unless Options.NoSync) before
// the call returns. Hot paths write through a Batcher instead.

// Get returns a copy of the value of key, or ErrNotFound. A present key
// with an empty value returns a non-nil empty slice.
//
// Like every read, Get sees every write whose commit finished before it
// began; Badger makes it wait for commits already in flight.
func (s *Store) Get(key []byte) ([]byte, error) {
	return s.AppendValue(nil, key)
}

// AppendValue appends the value of key to dst and returns the extended
// slice, or dst and ErrNotFound. It allocates nothing for the value when
// dst has room.
func (s *Store) AppendValue(dst, key []byte) ([]byte, error) {
	if !isKVKey(key) {
		return dst, ErrBadKey
	}
	if err := s.acquire(); err != nil {
		return dst, err
	}
	defer s.release()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(key)
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			return dst, ErrNotFound
		}
		return dst, fmt.Errorf("state: get: %w", err)
	}
	err = item.Value(func(v []byte) error {
		if dst == nil {
			dst = make([]byte, 0, len(v))
		}
		dst = append(dst, v...)
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("state: get: %w", err)
	}
	return dst, nil
}

// Put sets key to value, expiring after ttl (0: never). TTLs have a
// granularity of one second: the key expires between ttl and ttl+1s after
// the commit, never before ttl. Put returns after the commit is durable.
func (s *Store) Put(key, value []byte, ttl time.Duration) error {
	if !isKVKey(key) {
		return ErrBadKey
	}
	if ttl < 0 {
		return fmt.Errorf("state: negative TTL %v", ttl)
	}
	return s.update(true, func(txn *badger.Txn) error {
		e := badger.NewEntry(key, value)
		e.ExpiresAt = expiresAt(time.Now(), ttl)
		return txn.SetEntry(e)
	})
}

// Delete removes key (a no-op if absent) and returns after the commit is
// durable. It is accepted even when the disk is nearly full.
func (s *Store) Delete(key []byte) error {
	if !isKVKey(key) {
		return ErrBadKey
	}
	return s.update(false, func(txn *badger.Txn) error { return txn.Delete(key) })
}

// maxRetries bounds the retries of a transaction that keeps conflicting.
const maxRetries = 1000

// Update runs a read-modify-write of key in one serializable transaction:
// fn gets the current value (nil when absent; it aliases Badger memory,
// valid only during fn) and returns the new one. A nil result deletes the
// key; a non-nil one (even empty) sets it, keeping the key's current TTL.
// An error from fn aborts the update and is returned as is.
//
// When another writer (another Update, a Batcher, Put) changes key between
// the read and the commit, the transaction is retried with the new value,
// so fn may run several times and must have no other effect. Update
// returns after the commit is durable.
func (s *Store) Update(key []byte, fn func(old []byte) ([]byte, error)) error {
	if !isKVKey(key) {
		return ErrBadKey
	}
	return s.update(true, func(txn *badger.Txn) error {
		var old []byte
		var expires uint64
		item, err := txn.Get(key)
		switch {
		case err == nil:
			expires = item.ExpiresAt()
			if old, err = item.ValueCopy(nil); err != nil {
				return err
			}
			if old == nil {
				old = []byte{}
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		nv, err := fn(old)
		if err != nil {
			return userError{err}
		}
		if nv == nil {
			if old == nil {
				return nil
			}
			return txn.Delete(key)
		}
		e := badger.NewEntry(key, nv)
		e.ExpiresAt = expires
		return txn.SetEntry(e)
	})
}

// userError carries an error of a caller's function through update, so
// it is returned unwrapped.
type userError struct{ err error }

func (u userError) Error() string { return u.err.Error() }

// update runs fn in a read-write transaction and commits it, retrying on
// conflict. guard: refuse when the disk is nearly full.
func (s *Store) update(guard bool, fn func(*badger.Txn) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if guard {
		if err := s.space.check(); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		txn := s.db.NewTransaction(true)
		err := fn(txn)
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		var ue userError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ue):
			return ue.err
		case errors.Is(err, badger.ErrConflict) && attempt < maxRetries:
			s.stats.conflicts.Add(1)
			continue
		default:
			return fmt.Errorf("state: write: %w", err)
		}
	}
}

// Scan calls fn for every live key that starts with prefix, in key order,
// until fn returns false. prefix is a keyed-state key or key prefix
// (Key(ns, p)); SplitKey splits the keys fn gets. key and value alias
// Badger memory, valid only during fn: copy what you keep. Scan reads one
// snapshot; fn may call other Store methods.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	if !isKVKey(prefix) {
		return ErrBadKey
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchSize: 64})
	defer it.Close()
	w := scanWalk{fn: fn, cont: true}
	value := w.value // one callback for the whole walk, not one per item
	for it.Seek(prefix); it.Valid(); it.Next() {
		w.item = it.Item()
		if err := w.item.Value(value); err != nil {
			return fmt.Errorf("state: scan: %w", err)
		}
		if !w.cont {
			return nil
		}
	}
	return nil
}

type scanWalk struct {
	item *badger.Item
	fn   func(key, value []byte) bool
	cont bool
}

func (w *scanWalk) value(v []byte) error {
	w.cont = w.fn(w.item.Key(), v)
	return nil
}

// expiresAt returns Badger's expiry (unix seconds) of a write at now with
// ttl: rounded up, so a key never expires before ttl has passed. 0: never.
func expiresAt(now time.Time, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	ns := now.Add(ttl).UnixNano()
	return uint64((ns + int64(time.Second) - 1) / int64(time.Second))
}

// GetValue reads key and decodes its msgpack value into a T.
func GetValue[T any](s *Store, key []byte) (T, error) {
	var v T
	raw, err := s.Get(key)
	if err != nil {
		return v, err
	}
	if err := msgpack.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("state: decode %T: %w", v, err)
	}
	return v, nil
}

// PutValue encodes v with msgpack and Puts it under key.
func PutValue[T any](s *Store, key []byte, v T, ttl time.Duration) error {
	raw, err := msgpack.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: encode %T: %w", v, err)
	}
	return s.Put(key, raw, ttl)
}

// PutValueBatch encodes v with msgpack and queues it on b (see
// Batcher.Put). An encoding error is returned and cb is not called.
func PutValueBatch[T any](b *Batcher, key []byte, v T, ttl time.Duration, cb func(error)) error {
	raw, err := msgpack.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: encode %T: %w", v, err)
	}
	b.Put(key, raw, ttl, cb)
	return nil
}

// Op is one write of a Commit: a Put of Value (expiring after TTL, 0:
// never) or, with Delete, a removal of Key.
type Op struct {
	Key, Value []byte
	TTL        time.Duration
	Delete     bool
}

// ErrTooBig is returned by Commit for writes that do not fit one Badger
// transaction (about 15% of the memtable size: ~10 MB by default).
var ErrTooBig = errors.New("state: the writes do not fit one transaction")

// Commit applies ops in one transaction: all of them or none, durable
// when it returns nil. Later ops on a key win over earlier ones. A pipeline
// checkpoint (its operators' state, its outputs and its input positions)
// is one Commit. It is refused when the disk is nearly full.
func (s *Store) Commit(ops []Op) error {
	for i := range ops {
		if !isKVKey(ops[i].Key) {
			return ErrBadKey
		}
		if ops[i].TTL < 0 {
			return fmt.Errorf("state: negative TTL %v", ops[i].TTL)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	now := time.Now()
	err := s.update(true, func(txn *badger.Txn) error {
		for i := range ops {
			o := &ops[i]
			var err error
			if o.Delete {
				err = txn.Delete(o.Key)
			} else {
				e := badger.NewEntry(o.Key, o.Value)
				e.ExpiresAt = expiresAt(now, o.TTL)
				err = txn.SetEntry(e)
			}
			if errors.Is(err, badger.ErrTxnTooBig) {
				return ErrTooBig
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.stats.commits.Add(1)
		s.stats.writes.Add(uint64(len(ops)))
	} else {
		s.stats.commitFailures.Add(1)
	}
	return err
}

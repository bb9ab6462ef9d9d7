package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// FormatVersion is the on-disk format this build reads and writes. It is
// recorded in the STREAMD-FORMAT file of Dir and under a metadata key
// inside the database; Open refuses any other version.
const FormatVersion = 1

// FormatFile is the name of the format file in Dir.
const FormatFile = "STREAMD-FORMAT"

var (
	// ErrNotFound is returned by Get (and GetValue) for a key that is
	// absent, deleted or expired.
	ErrNotFound = errors.New("state: key not found")
	// ErrClosed is returned by every call on a closed Store or Batcher.
	ErrClosed = errors.New("state: store closed")
	// ErrDiskFull is wrapped by the error of a write refused because the
	// file system of Dir has less than Options.MinFreeBytes free.
	ErrDiskFull = errors.New("state: disk full")
	// ErrFormat is wrapped by Open's error when Dir holds data of another
	// format version, or data that is not a streamd state directory.
	ErrFormat = errors.New("state: incompatible data directory")
	// ErrCorrupt is wrapped by Open's error when Badger cannot open Dir.
	ErrCorrupt = errors.New("state: data directory damaged or unreadable")
)

// Store is a Badger database holding keyed state and the room log. Every
// method is safe for concurrent use; Close waits for calls in progress.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	// users counts calls in progress; Close sets closed and waits for
	// users to drain, so no call ever reaches a closed Badger DB.
	users  atomic.Int64
	closed atomic.Bool

	mu       sync.Mutex
	closing  bool                  // Close has begun: no new Batcher
	batchers map[*Batcher]struct{} // open batchers, closed by Close

	gcStop chan struct{}
	gcDone chan struct{}
	gcMu   sync.Mutex // one GC pass at a time

	space spaceGuard

	stats struct {
		gcRuns, gcFiles                 atomic.Uint64
		commits, writes, commitFailures atomic.Uint64
		conflicts                       atomic.Uint64
	}

	// commitHook, when set (tests only), runs before each Batcher commit
	// and fails it with the error it returns.
	commitHook func() error
}

// Open opens (or creates) the store that opts describe.
//
// A directory that exists must be one that a streamd of this format
// version wrote: Open fails with an error wrapping ErrFormat when Dir holds
// another format version or unrelated files, and with one wrapping
// ErrCorrupt when Badger cannot read it. Each error says what to do; Open
// never starts empty over data it could not read.
func Open(opts Options) (*Store, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	fresh := false
	if !opts.InMemory {
		var err error
		if fresh, err = prepareDir(opts.Dir); err != nil {
			return nil, err
		}
	}
	db, err := openBadger(badgerOptions(opts))
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("state: data directory %s is in use by another process (%v): stop it or choose another Options.Dir", opts.Dir, err)
		}
		return nil, fmt.Errorf("%w: %s: %v: restore the directory from a backup (streamd restore), or move it aside to start with an empty one", ErrCorrupt, opts.Dir, err)
	}
	s := &Store{
		db:       db,
		opts:     opts,
		log:      opts.Logger,
		batchers: make(map[*Batcher]struct{}),
		gcStop:   make(chan struct{}),
		gcDone:   make(chan struct{}),
	}
	s.space = spaceGuard{dir: opts.Dir, min: opts.MinFreeBytes}
	if opts.InMemory {
		s.space.min = -1
	}
	if err := s.checkFormatKey(fresh); err != nil {
		_ = db.Close()
		return nil, err
	}
	if opts.InMemory || opts.GCInterval < 0 {
		close(s.gcDone)
	} else {
		go s.gcLoop(opts.GCInterval)
	}
	return s, nil
}

// badgerOptions maps Options onto Badger's (doc.go: "Badger settings").
func badgerOptions(o Options) badger.Options {
	maxBatch := o.MemTableSize * 15 / 100 // Badger's own limit on one commit
	bo := badger.DefaultOptions(o.Dir)
	if o.vlogFileSize > 0 {
		bo = bo.WithValueLogFileSize(o.vlogFileSize)
	}
	return bo.
		WithInMemory(o.InMemory).
		WithSyncWrites(!o.NoSync).
		WithLogger(badgerLogger{o.Logger}).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithNumCompactors(2).
		// Values up to 1 MiB live in the LSM tree with their keys: room
		// messages and operator state are small, and reads and replays
		// then never touch the value log.
		WithValueThreshold(min(1<<20, maxBatch/2)).
		// Tables are memory-mapped; without compression Badger needs no
		// block cache, and reads cost no decompression.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		// Verify every table's checksum when it is opened, so a damaged
		// file fails Open instead of returning wrong data later.
		WithChecksumVerificationMode(options.OnTableRead).
		WithVerifyValueChecksum(true)
}

// openBadger opens Badger, turning a panic (Badger panics on some kinds
// of damage) into an error.
func openBadger(bo badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger panicked: %v", r)
		}
	}()
	return badger.Open(bo)
}

// prepareDir checks (or creates) a data directory before Badger touches
// it. fresh reports that the directory held nothing.
func prepareDir(dir string) (fresh bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("state: cannot create data directory %s: %v: check Options.Dir and its parent's permissions", dir, err)
		}
		return true, writeFormatFile(dir)
	case err != nil:
		return false, fmt.Errorf("%w: %s: %v: check Options.Dir and its permissions", ErrCorrupt, dir, err)
	case !fi.IsDir():
		return false, fmt.Errorf("%w: %s is not a directory: set Options.Dir to a directory", ErrFormat, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v: check the directory's permissions", ErrCorrupt, dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FormatFile))
	switch {
	case err == nil:
		v, perr := parseFormatFile(raw)
		if perr != nil {
			return false, fmt.Errorf("%w: %s: %v: restore the directory from a backup, or move it aside to start with an empty one", ErrCorrupt, filepath.Join(dir, FormatFile), perr)
		}
		if v != FormatVersion {
			return false, fmt.Errorf("%w: %s was written in state format version %d; this build reads version %d: run a streamd build of that format version (or migrate the data with it: streamd backup, then restore into a new directory), or choose another Options.Dir", ErrFormat, dir, v, FormatVersion)
		}
		return false, nil
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("%w: cannot read %s: %v: check the directory's permissions", ErrCorrupt, filepath.Join(dir, FormatFile), err)
	}
	// Empty but for a file system's lost+found or our own interrupted
	// format-file write: a new directory.
	empty := true
	for _, e := range entries {
		if n := e.Name(); n != "lost+found" && n != FormatFile+".tmp" {
			empty = false
		}
	}
	if empty {
		return true, writeFormatFile(dir)
	}
	for _, e := range entries {
		n := e.Name()
		if n == "MANIFEST" || strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".vlog") || strings.HasSuffix(n, ".mem") {
			return false, fmt.Errorf("%w: %s holds Badger data but no %s file: it was not written by streamd, or the file was lost; restore the directory from a backup, or choose another Options.Dir", ErrFormat, dir, FormatFile)
		}
	}
	return false, fmt.Errorf("%w: %s is not empty and is not a streamd data directory (no %s file): choose an empty or new Options.Dir", ErrFormat, dir, FormatFile)
}

const formatMagic = "streamd-state-format "

func parseFormatFile(raw []byte) (int, error) {
	s := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(s, formatMagic) {
		return 0, fmt.Errorf("unrecognised content %q", s)
	}
	v, err := strconv.Atoi(strings.TrimPrefix(s, formatMagic))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("unrecognised version in %q", s)
	}
	return v, nil
}

// writeFormatFile writes STREAMD-FORMAT durably (temp file, fsync,
// rename, fsync of the directory).
func writeFormatFile(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("state: cannot write %s in %s: %v: check Options.Dir's permissions and free space", FormatFile, dir, err)
	}
	tmp := filepath.Join(dir, FormatFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fail(err)
	}
	_, err = fmt.Fprintf(f, "%s%d\n", formatMagic, FormatVersion)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, FormatFile))
	}
	if err != nil {
		return fail(err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fail(err)
		}
	}
	return nil
}

// checkFormatKey checks (or, in a new store, writes) the format key.
func (s *Store) checkFormatKey(fresh bool) error {
	var have []byte
	empty := true
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if err == nil {
			have, err = item.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	where := s.opts.Dir
	if s.opts.InMemory {
		where = "in-memory store"
	}
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s: reading the format key: %v: restore the directory from a backup, or move it aside to start with an empty one", ErrCorrupt, where, err)
	case have == nil && (fresh || empty):
		want := []byte(strconv.Itoa(FormatVersion))
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(formatKey, want) }); err != nil {
			return fmt.Errorf("state: %s: writing the format key: %v", where, err)
		}
		return nil
	case have == nil:
		return fmt.Errorf("%w: %s holds data but no format key: it was not written by streamd, or it is damaged; restore it from a backup, or choose another Options.Dir", ErrFormat, where)
	}
	if v, err := strconv.Atoi(string(have)); err != nil || v != FormatVersion {
		return fmt.Errorf("%w: %s holds data of state format version %q; this build reads version %d: run a streamd build of that version, or choose another Options.Dir", ErrFormat, where, have, FormatVersion)
	}
	return nil
}

// Close commits and closes every open Batcher (their pending writes are
// committed and their callbacks run), waits for calls in progress, stops
// the GC schedule and closes the database. Calls after Close return
// ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Load() {
		return nil
	}
	s.mu.Lock()
	s.closing = true
	bs := make([]*Batcher, 0, len(s.batchers))
	for b := range s.batchers {
		bs = append(bs, b)
	}
	s.mu.Unlock()
	for _, b := range bs {
		b.Close()
	}
	if s.closed.Swap(true) {
		return nil
	}
	for s.users.Load() > 0 {
		time.Sleep(100 * time.Microsecond)
	}
	if s.gcStop != nil {
		close(s.gcStop)
	}
	<-s.gcDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// acquire registers a call in progress; every call that touches the
// database brackets itself with acquire/release.
func (s *Store) acquire() error {
	s.users.Add(1)
	if s.closed.Load() {
		s.users.Add(-1)
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.users.Add(-1) }

// Stats are counters of a Store since Open.
type Stats struct {
	GCRuns           uint64 // value-log GC passes (scheduled and RunGC)
	GCFilesReclaimed uint64 // value-log files rewritten and deleted by GC
	Commits          uint64 // Batcher commits (Badger transactions)
	Writes           uint64 // writes (put, delete, append) those commits carried
	CommitFailures   uint64 // Batcher commits that failed (each write got the error)
	Conflicts        uint64 // transaction conflicts retried (Update, Batcher, Trim)
	LSMBytes         int64  // size of the LSM tree on disk (refreshed by Badger each minute)
	VLogBytes        int64  // size of the value log on disk (same)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		GCRuns:           s.stats.gcRuns.Load(),
		GCFilesReclaimed: s.stats.gcFiles.Load(),
		Commits:          s.stats.commits.Load(),
		Writes:           s.stats.writes.Load(),
		CommitFailures:   s.stats.commitFailures.Load(),
		Conflicts:        s.stats.conflicts.Load(),
	}
	if s.acquire() == nil {
		st.LSMBytes, st.VLogBytes = s.db.Size()
		s.release()
	}
	return st
}

// gcDiscardRatio: a value-log file is rewritten when at least half of it
// is garbage.
const gcDiscardRatio = 0.5

func (s *Store) gcLoop(every time.Duration) {
	defer close(s.gcDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.gcStop:
			return
		case <-t.C:
			if n, err := s.RunGC(); err != nil {
				s.log.Warn("state: value-log GC failed", "err", err)
			} else if n > 0 {
				s.log.Info("state: value-log GC", "files_reclaimed", n)
			}
		}
	}
}

// RunGC runs one value-log GC pass now: it rewrites value-log files while
// Badger finds one at least half garbage, and returns how many it
// reclaimed. The schedule (Options.GCInterval) calls it; an in-memory
// store has no value log and returns 0.
func (s *Store) RunGC() (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	if s.opts.InMemory {
		return 0, nil
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	s.stats.gcRuns.Add(1)
	n := 0
	for {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			n++
			s.stats.gcFiles.Add(1)
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return n, nil
		default:
			return n, fmt.Errorf("state: value-log GC: %w", err)
		}
	}
}

// Backup writes a Badger backup stream of every entry with version ≥
// since to w and returns the version to pass as since next time for an
// incremental backup (0 for a full one). It reads a snapshot and may run
// while the store is in use.
func (s *Store) Backup(w io.Writer, since uint64) (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	v, err := s.db.Backup(w, since)
	if err != nil {
		return v, fmt.Errorf("state: backup: %w", err)
	}
	return v, nil
}

// Load reads a stream written by Backup into the store. Nothing else may
// write to the store while it runs (open no Batcher, call no Put). It
// fails if the backup came from another format version.
func (s *Store) Load(r io.Reader) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := s.db.Load(r, 16); err != nil {
		return fmt.Errorf("state: load backup: %w", err)
	}
	var have []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if err != nil {
			return err
		}
		have, err = item.ValueCopy(nil)
		return err
	})
	if err != nil || !bytes.Equal(have, []byte(strconv.Itoa(FormatVersion))) {
		return fmt.Errorf("%w: the loaded backup is of state format version %q (err %v); this build reads version %d", ErrFormat, have, err, FormatVersion)
	}
	return nil
}

// badgerLogger routes Badger's logs to slog: errors and warnings only.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

package state

import (
	"fmt"
	"log/slog"
	"time"
)

// Options configures a Store. Every field is optional except that exactly
// one of Dir and InMemory must be set; the zero value of any other field
// means the default its comment names. Open calls EnsureDefaults and
// Validate.
type Options struct {
	// Dir is the data directory. It is created if missing. A directory
	// that holds anything but a streamd state directory of this format
	// version is refused (see Open). Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory: nothing survives Close. For
	// tests and embedding (`--data ""`). Dir must then be empty.
	InMemory bool
	// NoSync turns off the fsync of each commit. Default false: a write is
	// acknowledged (Put returns, a Batcher callback runs with nil) only
	// after its commit is fsynced, so a kill -9 or a power loss loses
	// nothing acknowledged. With NoSync a kill -9 still loses nothing (the
	// write-ahead log is in the page cache) but a power loss or kernel
	// crash may lose the last acknowledged writes.
	NoSync bool
	// Logger receives the store's logs and Badger's own warnings and
	// errors (Badger's info and debug lines are dropped). Default
	// slog.Default().
	Logger *slog.Logger
	// GCInterval is the period of value-log garbage collection (see
	// Store.RunGC; Store.Stats counts the runs and the files reclaimed).
	// Default 10m; negative turns the schedule off.
	GCInterval time.Duration
	// BatchInterval bounds how long a write waits in a Batcher before its
	// batch is committed, when neither BatchMax nor Batcher.Flush commits
	// it first. Default 1ms.
	BatchInterval time.Duration
	// BatchMax is the number of writes at which a Batcher commits without
	// waiting for BatchInterval. Default 1024.
	BatchMax int
	// MemTableSize is the size of one Badger memtable and so the unit of
	// write buffering: up to 3 memtables live in memory, and one commit
	// may carry at most about 15% of it (bigger batches are split, see
	// Batcher). Default 64 MiB; at least 1 MiB.
	MemTableSize int64
	// MinFreeBytes is the free space the file system holding Dir must
	// keep. Badger writes through memory-mapped files, where a full disk
	// is a SIGBUS crash rather than an error, so the store refuses writes
	// (ErrDiskFull) while less than MinFreeBytes is free instead of
	// running the disk full. Deletes and trims are still accepted, so
	// space can be reclaimed. Default max(256 MiB, 4×MemTableSize);
	// negative turns the check off. Ignored InMemory.
	MinFreeBytes int64
	// Now is the clock of the room log: the append time stored with each
	// entry and the reference of Retention.MaxAge. Default time.Now. (TTL
	// expiry of keyed state uses Badger's wall clock, whatever Now is.)
	Now func() time.Time

	vlogFileSize int64 // tests: Badger's ValueLogFileSize (default 1 GiB)
}

// Default values of Options.
const (
	DefaultGCInterval    = 10 * time.Minute
	DefaultBatchInterval = time.Millisecond
	DefaultBatchMax      = 1024
	DefaultMemTableSize  = 64 << 20
	minMemTableSize      = 1 << 20
	minMinFreeBytes      = 256 << 20
)

// EnsureDefaults fills every zero field with its default.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.BatchInterval == 0 {
		o.BatchInterval = DefaultBatchInterval
	}
	if o.BatchMax == 0 {
		o.BatchMax = DefaultBatchMax
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = max(minMinFreeBytes, 4*o.MemTableSize)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid field (call EnsureDefaults first).
// Its errors name the setting to change.
func (o *Options) Validate() error {
	switch {
	case o.InMemory && o.Dir != "":
		return fmt.Errorf("state: Options.Dir is %q and Options.InMemory is set: set one of them", o.Dir)
	case !o.InMemory && o.Dir == "":
		return fmt.Errorf("state: Options.Dir is empty: set a data directory, or Options.InMemory to keep no files")
	case o.BatchInterval < 0:
		return fmt.Errorf("state: Options.BatchInterval is %v: it must be positive (0 means %v)", o.BatchInterval, DefaultBatchInterval)
	case o.BatchMax < 0:
		return fmt.Errorf("state: Options.BatchMax is %d: it must be positive (0 means %d)", o.BatchMax, DefaultBatchMax)
	case o.MemTableSize < minMemTableSize:
		return fmt.Errorf("state: Options.MemTableSize is %d: it must be at least %d (1 MiB)", o.MemTableSize, minMemTableSize)
	case o.MemTableSize >= 1<<30:
		return fmt.Errorf("state: Options.MemTableSize is %d: it must be below 1 GiB", o.MemTableSize)
	}
	return nil
}

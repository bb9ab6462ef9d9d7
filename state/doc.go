// Package state is streamd's durable storage: an embedded Badger (v4)
// database holding operators' keyed state and the durable room log used
// for replay, written in batches so that the engine can acknowledge a
// message only once it is on disk.
//
// It owns the Badger directory (Options.Dir) and everything in it, the
// key layout below, write batching (Batcher), retention of the room log
// (Log.Trim), value-log garbage collection, and the checks that refuse a
// directory it cannot trust. It does not know about rooms' policies,
// shards or the wire protocol: the engine decides what is durable, which
// Batcher a write goes through, and what a failed write means. It imports
// nothing of streamd's, and never netpoll/.
//
// Sessions (sessions.go) keeps per-key session state with an idle
// timeout in memory, compactly (about 170 bytes per session), persisted
// through a Batcher under Key(namespace, key) as
// u8 version=1 | u64 firstSeen | u64 lastSeen | data, with TTL idle +
// grace; Load restores it after a restart and sessions that went idle
// while the process was down expire at the first Advance.
//
// Window state, deduplication windows and checkpoints (state and input
// offset in one transaction) are still to come; they will use the same
// store and key space.
//
// # Calls and who may make them
//
//   - Store: every method is safe for concurrent use. Open, then Close
//     once at shutdown; Close commits and closes the open Batchers and
//     waits for calls in progress.
//   - Batcher (Store.NewBatcher): one per writer — an engine shard worker
//     or a pipeline executor. Its methods are safe from any goroutine
//     (a mutex the owner holds uncontended), but batching and ordering are
//     per Batcher, so give each owner its own. Callbacks run on the
//     Batcher's committer goroutine; they may queue writes and Flush but
//     must not call Sync, Close or Store.Close (those wait for the
//     committer).
//   - Log (Store.Log): reads and trims; safe for concurrent use, also
//     beside appends to the same room.
//
// Slices passed to callbacks (Scan, Range) alias Badger memory and are
// valid only during the callback. Slices returned (Get) are the caller's.
//
// # Durability of each call
//
// "Durable" means fsynced (Badger's write-ahead log is msync'ed) before
// the call returns or the callback runs; with Options.NoSync it means
// written to the page cache, which survives a kill -9 of the process but
// not a power loss or a kernel crash.
//
//   - Put, Delete, Update, PutValue: durable when they return nil.
//   - Batcher.Put, Delete, Append: durable when the callback runs with nil;
//     not yet when the method returns. Batcher.Sync: everything queued
//     before it is committed (and called back) when it returns.
//   - Log.Trim, DeleteRoom: each chunk of up to 10,000 removals is one
//     durable transaction with the room's metadata; an interrupted trim
//     leaves a consistent, partly trimmed log.
//   - Reads (Get, Scan, Range, Stat, LastSeq, FirstSeq, Rooms) see every
//     write whose commit finished before they began. Badger makes a read
//     that begins while commits are in flight wait for them: under a
//     fsyncing writer a Get can take as long as an fsync. Keep hot state in
//     the shard's memory and use the store for durability and recovery.
//
// A kill -9 loses no acknowledged write (tested with a child process
// killed mid-stream). A failed commit never looks like a success: its
// error reaches every callback of its batch (see Batcher).
//
// # Bad conditions
//
// Open refuses, with an error that says what to do, a directory that is
// damaged or unreadable (ErrCorrupt: Badger's checksums, verified for
// every table when it is opened, or its manifest fail), written by
// another format version or not by streamd (ErrFormat: the STREAMD-FORMAT
// file and a format key inside the database both hold FormatVersion), or
// used by another process. It never starts empty over data it could not
// read.
//
// Badger writes through memory-mapped files: a full disk would be a
// SIGBUS crash, not an error (verified on a full tmpfs). The store
// therefore refuses puts and appends with ErrDiskFull while the file
// system has less than Options.MinFreeBytes free (deletes and trims still
// go through, to make room). Background compactions also need that
// reserve.
//
// Badger replays its write-ahead log at Open and stops at the first
// damaged record, as it must for a write torn by a crash; damage in the
// middle of the log cannot be told apart from that.
//
// Value-log GC runs every Options.GCInterval; Stats counts its passes and
// the files it reclaimed. Values up to 1 MiB live in the LSM tree, so the
// value log only holds bigger ones; space of small overwritten or deleted
// values comes back through compaction.
//
// # Key layout
//
// Every key starts with a tag byte. Integers are big-endian, so keys sort
// by their numeric fields.
//
//	tag 0x00  store metadata      0x00 | name                     ("format" = FormatVersion, decimal)
//	tag 0x01  keyed state         0x01 | u16 len(ns) | ns | key   (Key, AppendKey, SplitKey)
//	tag 0x02  room log entry      0x02 | u16 len(room) | room | u64 seq
//	tag 0x03  room log head meta  0x03 | room
//	tag 0x04  room log tail meta  0x04 | room
//
// The length prefix keeps a namespace (room) from being a prefix of a
// longer one, so Key(ns, "") is the scan prefix of exactly namespace ns,
// and a room's entries are contiguous and ordered by seq. Keyed-state
// calls accept only 0x01 keys (ErrBadKey otherwise).
//
// Values:
//
//	keyed state      the caller's bytes (msgpack with GetValue/PutValue)
//	log entry        u64 append time (unix ns, Options.Now) | data
//	head meta        u8 version=1 | u64 first seq ever | u64 last seq | u64 appended count | u64 appended bytes
//	tail meta        u8 version=1 | u64 removed through seq | u64 removed count | u64 removed bytes
//
// Appends (the Batcher's committer) write only the head, in the same
// transaction as their entries; trims write only the tail, with their
// deletes. Retained count and bytes are head minus tail, and the oldest
// retained entry is the first key after the tail's seq, so appends and
// trims of one room never conflict, and FirstSeq and Range never walk
// over the tombstones of trimmed entries.
//
// # Badger settings
//
// Open maps Options onto Badger: SyncWrites = !NoSync; MemTableSize (3
// memtables); 2 compactors; ValueThreshold 1 MiB (or less for small
// memtables); no compression and no block cache (tables are mmapped);
// table checksums verified at open; value checksums verified on read;
// conflict detection on (Update and the Batcher's log metadata rely on
// it); Badger's warnings and errors logged through Options.Logger.
package state

package state

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A long interval and a high BatchMax: only Flush commits.
func flushOnlyStore(t *testing.T) *Store {
	o := testOpts(t, "")
	o.BatchInterval = time.Hour
	o.BatchMax = 1 << 20
	return mustOpen(t, o)
}

func TestBatcherManyWritesOneCommit(t *testing.T) {
	s := flushOnlyStore(t)
	b := mustBatcher(t, s)
	const n = 500
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		k := Key("b", fmt.Sprintf("k%03d", i))
		wg.Add(1)
		err := b.Put(k, []byte(fmt.Sprint(i)), 0, func(err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			// Called after the commit: the write is visible.
			if v, gerr := s.Get(k); gerr != nil || string(v) != fmt.Sprint(i) {
				t.Errorf("write %d not visible in its callback: %q %v", i, v, gerr)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	early := len(order)
	mu.Unlock()
	if early != 0 || b.Pending() != n {
		t.Fatalf("before Flush: %d callbacks, %d pending; want 0, %d", early, b.Pending(), n)
	}
	before := s.Stats()
	b.Flush()
	wg.Wait()
	after := s.Stats()
	if c := after.Commits - before.Commits; c != 1 {
		t.Fatalf("%d writes took %d commits, want 1", n, c)
	}
	if w := after.Writes - before.Writes; w != n {
		t.Fatalf("Stats.Writes grew by %d, want %d", w, n)
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("callback %d was write %d: callbacks out of order", i, v)
		}
	}
	if b.Pending() != 0 {
		t.Fatalf("Pending = %d after all callbacks", b.Pending())
	}
}

func TestBatcherTriggers(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		o := testOpts(t, "")
		o.BatchInterval = time.Hour
		o.BatchMax = 10
		s := mustOpen(t, o)
		b := mustBatcher(t, s)
		var r results
		for i := 0; i < 100; i++ {
			_ = b.Put(Key("m", fmt.Sprint(i)), []byte("v"), 0, r.cb())
		}
		for _, err := range r.wait(t) { // no Flush: BatchMax commits
			if err != nil {
				t.Fatal(err)
			}
		}
		if c := s.Stats().Commits; c < 1 || c > 10 {
			t.Fatalf("100 writes with BatchMax 10 took %d commits, want 1..10", c)
		}
	})
	t.Run("interval", func(t *testing.T) {
		o := testOpts(t, "")
		o.BatchInterval = 5 * time.Millisecond
		s := mustOpen(t, o)
		b := mustBatcher(t, s)
		var r results
		start := time.Now()
		_ = b.Put(Key("i", "k"), []byte("v"), 0, r.cb())
		if errs := r.wait(t); errs[0] != nil { // no Flush: the timer commits
			t.Fatal(errs[0])
		}
		t.Logf("committed by the interval after %v", time.Since(start))
	})
}

func TestBatcherDeleteAndOrderWithinBatch(t *testing.T) {
	s := flushOnlyStore(t)
	b := mustBatcher(t, s)
	k := Key("o", "k")
	var r results
	_ = b.Put(k, []byte("1"), 0, r.cb())
	_ = b.Delete(k, r.cb())
	_ = b.Put(k, []byte("3"), 0, r.cb())
	k2 := Key("o", "k2")
	_ = b.Put(k2, []byte("1"), 0, r.cb())
	_ = b.Delete(k2, r.cb())
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, err := range r.wait(t) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.Get(k); err != nil || string(v) != "3" {
		t.Fatalf("k = %q %v, want the last write", v, err)
	}
	if _, err := s.Get(k2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("k2 = %v, want deleted", err)
	}
}

func TestBatcherFailedCommitReachesEveryCallback(t *testing.T) {
	s := flushOnlyStore(t)
	b := mustBatcher(t, s)
	boom := errors.New("injected disk error")
	var fail atomic.Bool
	s.commitHook = func() error {
		if fail.Load() {
			return boom
		}
		return nil
	}
	fail.Store(true)
	var r results
	for i := 0; i < 50; i++ {
		_ = b.Put(Key("f", fmt.Sprint(i)), []byte("v"), 0, r.cb())
	}
	_ = b.Append("room", 1, []byte("m"), r.cb())
	if err := b.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync = %v, want the commit's error", err)
	}
	errs := r.wait(t)
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("callback %d got %v, want the commit's error", i, err)
		}
	}
	if _, err := s.Get(Key("f", "0")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed write is readable: %v", err)
	}
	// The batcher keeps going.
	fail.Store(false)
	var r2 results
	_ = b.Put(Key("f", "after"), []byte("v"), 0, r2.cb())
	_ = b.Append("room", 1, []byte("m"), r2.cb())
	b.Flush()
	for _, err := range r2.wait(t) {
		if err != nil {
			t.Fatalf("write after a failed commit: %v", err)
		}
	}
	if st := s.Stats(); st.CommitFailures != 1 {
		t.Fatalf("CommitFailures = %d, want 1", st.CommitFailures)
	}
}

func TestBatcherSeqOrder(t *testing.T) {
	s := flushOnlyStore(t)
	b := mustBatcher(t, s)
	var r results
	_ = b.Append("r", 5, []byte("five"), r.cb())
	_ = b.Append("r", 5, []byte("again"), r.cb()) // same batch
	_ = b.Append("r", 7, []byte("seven"), r.cb()) // gap: fine
	_ = b.Put(Key("x", "y"), []byte("z"), 0, r.cb())
	b.Flush()
	errs := r.wait(t)
	if errs[0] != nil || !errors.Is(errs[1], ErrSeqOrder) || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errors = %v", errs)
	}
	var r2 results
	_ = b.Append("r", 6, []byte("six"), r2.cb()) // next batch
	b.Flush()
	if errs := r2.wait(t); !errors.Is(errs[0], ErrSeqOrder) {
		t.Fatalf("late seq = %v, want ErrSeqOrder", errs[0])
	}
	st, ok, err := s.Log().Stat("r")
	if err != nil || !ok || st != (RoomStat{First: 5, Last: 7, Count: 2, Bytes: 9}) {
		t.Fatalf("Stat = %+v %v %v", st, ok, err)
	}
}

func TestBatcherCallbackMayWrite(t *testing.T) {
	s := flushOnlyStore(t)
	b := mustBatcher(t, s)
	var r results
	second := r.cb()
	_ = b.Put(Key("cb", "1"), []byte("v"), 0, func(err error) {
		if err != nil {
			t.Error(err)
		}
		// A write from a callback: no deadlock.
		if err := b.Put(Key("cb", "2"), []byte("v"), 0, second); err != nil {
			t.Error(err)
		}
		b.Flush()
	})
	b.Flush()
	if errs := r.wait(t); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func TestBatcherConcurrentWriters(t *testing.T) {
	o := testOpts(t, "")
	o.BatchMax = 64
	s := mustOpen(t, o)
	b := mustBatcher(t, s)
	var r results
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				_ = b.Put(Key("c", fmt.Sprintf("%d/%d", g, i)), []byte("v"), 0, r.cb())
				if i%50 == 0 {
					b.Flush()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range r.wait(t) {
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	_ = s.Scan(Key("c", ""), func(k, v []byte) bool { n++; return true })
	if n != 2000 {
		t.Fatalf("%d keys, want 2000", n)
	}
}

func TestBatcherSplitsBigBatches(t *testing.T) {
	o := testOpts(t, "")
	o.MemTableSize = 1 << 20 // a transaction holds about 150 KiB
	o.BatchInterval = time.Hour
	o.BatchMax = 1 << 20
	s := mustOpen(t, o)
	b := mustBatcher(t, s)
	var r results
	val := make([]byte, 100)
	for i := 0; i < 3000; i++ {
		_ = b.Put(Key("big", fmt.Sprint(i)), val, 0, r.cb())
		_ = b.Append("bigroom", uint64(i+1), val, r.cb())
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, err := range r.wait(t) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := s.Stats().Commits; c < 3 {
		t.Fatalf("6000 writes of ~130 B in %d commits: expected a split", c)
	}
	st, _, err := s.Log().Stat("bigroom")
	if err != nil || st.Count != 3000 || st.Last != 3000 || st.First != 1 || st.Bytes != 300000 {
		t.Fatalf("Stat = %+v %v", st, err)
	}
}

func TestBatcherAndStoreClose(t *testing.T) {
	o := testOpts(t, "")
	o.BatchInterval = time.Hour
	o.BatchMax = 1 << 20
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewBatcher()
	if err != nil {
		t.Fatal(err)
	}
	var r results
	for i := 0; i < 10; i++ {
		_ = b.Put(Key("cl", fmt.Sprint(i)), []byte("v"), 0, r.cb())
	}
	// Store.Close commits what the open batchers hold.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, err := range r.wait(t) {
		if err != nil {
			t.Fatalf("pending write at Close: %v", err)
		}
	}
	if err := b.Put(Key("cl", "late"), nil, 0, func(error) { t.Error("callback of a refused write") }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if err := b.Append("r", 1, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := b.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
	if _, err := s.NewBatcher(); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewBatcher after Close = %v", err)
	}
	if _, err := s.Get(Key("cl", "0")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if err := s.Put(Key("cl", "0"), nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if _, _, err := s.Log().LastSeq("r"); !errors.Is(err, ErrClosed) {
		t.Fatalf("LastSeq after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b.Close() // idempotent
}

func TestDiskFullGuard(t *testing.T) {
	o := testOpts(t, t.TempDir())
	o.MinFreeBytes = 1 << 62 // more than any disk: every write is refused
	s := mustOpen(t, o)
	b := mustBatcher(t, s)
	k := Key("df", "k")
	if err := s.Put(k, []byte("v"), 0); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Put = %v, want ErrDiskFull", err)
	}
	var r results
	_ = b.Put(k, []byte("v"), 0, r.cb())
	_ = b.Append("room", 1, []byte("v"), r.cb())
	b.Flush()
	for _, err := range r.wait(t) {
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("batched write = %v, want ErrDiskFull", err)
		}
	}
	// Deletes (and trims) go through: they are how space is reclaimed.
	if err := s.Delete(k); err != nil {
		t.Fatalf("Delete on a full disk: %v", err)
	}
	var r2 results
	_ = b.Delete(k, r2.cb())
	b.Flush()
	if errs := r2.wait(t); errs[0] != nil {
		t.Fatalf("batched Delete on a full disk: %v", errs[0])
	}
}

// TestDiskFullTmpfs fills a real small file system (a tmpfs, which needs
// root and mount). Without the guard Badger would SIGBUS; with it the
// writes fail with ErrDiskFull, and everything acknowledged survives.
func TestDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	o := testOpts(t, mnt+"/data")
	o.MemTableSize = 2 << 20
	o.MinFreeBytes = 16 << 20
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewBatcher()
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 4000)
	acked := 0
	var full error
	for i := 0; full == nil && i < 200_000; i++ {
		for j := range val {
			val[j] = byte(i + j) // incompressible enough
		}
		done := make(chan error, 1)
		_ = b.Append("r", uint64(i+1), val, func(err error) { done <- err })
		b.Flush()
		if err := <-done; err != nil {
			full = err
		} else {
			acked++
		}
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("after %d appends: %v, want ErrDiskFull", acked, full)
	}
	t.Logf("%d appends acknowledged before ErrDiskFull: %v", acked, full)
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, o)
	st, ok, err := s.Log().Stat("r")
	if err != nil || !ok || st.Count != uint64(acked) || st.Last != uint64(acked) {
		t.Fatalf("after reopen: %+v %v %v, want %d entries", st, ok, err, acked)
	}
	// Trimming is accepted on the full disk (its space comes back when
	// Badger compacts the tombstones away).
	if n, err := s.Log().Trim("r", Retention{MaxCount: 10}); err != nil || n != uint64(acked-10) {
		t.Fatalf("Trim on a full disk = %d %v", n, err)
	}
}

func TestBatcherPutValidation(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	cb := func(error) { t.Error("callback of a refused write") }
	if err := b.Put([]byte("raw"), nil, 0, cb); !errors.Is(err, ErrBadKey) {
		t.Errorf("Put raw key = %v", err)
	}
	if err := b.Delete(nil, cb); !errors.Is(err, ErrBadKey) {
		t.Errorf("Delete nil key = %v", err)
	}
	if err := b.Put(Key("a", "b"), nil, -1, cb); err == nil {
		t.Error("negative TTL accepted")
	}
	if err := b.Append("", 1, nil, cb); err == nil {
		t.Error("empty room accepted")
	}
	if b.Pending() != 0 {
		t.Errorf("Pending = %d", b.Pending())
	}
}

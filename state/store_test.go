package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "Options.Dir is empty"},
		{Options{Dir: "x", InMemory: true}, "Options.InMemory"},
		{Options{InMemory: true, BatchInterval: -1}, "Options.BatchInterval"},
		{Options{InMemory: true, BatchMax: -1}, "Options.BatchMax"},
		{Options{InMemory: true, MemTableSize: 1000}, "Options.MemTableSize"},
		{Options{InMemory: true, MemTableSize: 2 << 30}, "Options.MemTableSize"},
	} {
		_, err := Open(c.o)
		if err == nil || !strings.HasPrefix(err.Error(), "state: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want an error naming %s", c.o, err, c.want)
		}
	}
	o := Options{InMemory: true}
	o.EnsureDefaults()
	if o.BatchInterval != time.Millisecond || o.BatchMax != 1024 || o.GCInterval != 10*time.Minute ||
		o.MemTableSize != 64<<20 || o.MinFreeBytes != 256<<20 || o.NoSync || o.Logger == nil || o.Now == nil {
		t.Fatalf("defaults: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}

// fill writes some of everything through every path.
func fill(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Put(Key("kv", "direct"), []byte("d"), 0); err != nil {
		t.Fatal(err)
	}
	if err := PutValue(s, Key("kv", "typed"), profile{Name: "ada"}, 0); err != nil {
		t.Fatal(err)
	}
	b := mustBatcher(t, s)
	for i := 0; i < 100; i++ {
		_ = b.Put(Key("kv", fmt.Sprintf("b%03d", i)), []byte(strconv.Itoa(i)), 0, nil)
	}
	appendN(t, b, "room.a", 1, 500)
	appendN(t, b, "room.b", 1, 10)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Log().Trim("room.a", Retention{MaxCount: 400}); err != nil {
		t.Fatal(err)
	}
}

// check finds what fill wrote.
func check(t *testing.T, s *Store) {
	t.Helper()
	if v, err := s.Get(Key("kv", "direct")); err != nil || string(v) != "d" {
		t.Fatalf("direct = %q %v", v, err)
	}
	if p, err := GetValue[profile](s, Key("kv", "typed")); err != nil || p.Name != "ada" {
		t.Fatalf("typed = %+v %v", p, err)
	}
	n := 0
	_ = s.Scan(Key("kv", "b"), func(k, v []byte) bool { n++; return true })
	if n != 100 {
		t.Fatalf("%d batched keys, want 100", n)
	}
	l := s.Log()
	st, ok, err := l.Stat("room.a")
	if err != nil || !ok || st != (RoomStat{First: 101, Last: 500, Count: 400, Bytes: uint64(len(logData("room.a", 101, 500)))}) {
		t.Fatalf("room.a = %+v %v %v", st, ok, err)
	}
	if got := seqs(t, l, "room.a", 0, math.MaxUint64); len(got) != 400 || got[0] != 101 {
		t.Fatalf("room.a range: %d entries", len(got))
	}
	if rooms, _ := l.Rooms(); len(rooms) != 2 {
		t.Fatalf("Rooms = %v", rooms)
	}
}

func logData(room string, from, to uint64) string {
	var sb strings.Builder
	for s := from; s <= to; s++ {
		fmt.Fprintf(&sb, "%s/%d", room, s)
	}
	return sb.String()
}

func TestReopenFindsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := mustOpen(t, testOpts(t, dir))
	fill(t, s)
	check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FormatFile))
	if err != nil || string(raw) != "streamd-state-format 1\n" {
		t.Fatalf("%s = %q %v", FormatFile, raw, err)
	}
	s = mustOpen(t, testOpts(t, dir))
	check(t, s)
	// And appends go on where they stopped.
	b := mustBatcher(t, s)
	appendN(t, b, "room.b", 11, 12)
}

func TestOpenRefusesOtherFormatVersion(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(t, dir))
	fill(t, s)
	_ = s.Close()
	if err := os.WriteFile(filepath.Join(dir, FormatFile), []byte("streamd-state-format 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testOpts(t, dir))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "this build reads version 1") {
		t.Fatalf("Open = %v, want ErrFormat naming both versions", err)
	}
	t.Logf("version mismatch: %v", err)
}

func TestOpenRefusesOtherFormatKey(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOpts(t, dir))
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(formatKey, []byte("7")) }); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := Open(testOpts(t, dir)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"7"`) {
		t.Fatalf("Open = %v, want ErrFormat", err)
	}
}

func TestOpenRefusesForeignDirs(t *testing.T) {
	t.Run("other files", func(t *testing.T) {
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
		if _, err := Open(testOpts(t, dir)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "empty or new Options.Dir") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("plain badger", func(t *testing.T) {
		dir := t.TempDir()
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) })
		_ = db.Close()
		if _, err := Open(testOpts(t, dir)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "Badger data but no") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("format file lost", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, testOpts(t, dir))
		fill(t, s)
		_ = s.Close()
		_ = os.Remove(filepath.Join(dir, FormatFile))
		if _, err := Open(testOpts(t, dir)); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		_ = os.WriteFile(f, nil, 0o644)
		if _, err := Open(testOpts(t, f)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("mount point is new", func(t *testing.T) {
		dir := t.TempDir()
		_ = os.Mkdir(filepath.Join(dir, "lost+found"), 0o700)
		mustOpen(t, testOpts(t, dir)) // lost+found alone does not make it foreign
	})
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		mustOpen(t, testOpts(t, dir))
		if _, err := Open(testOpts(t, dir)); err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("second Open = %v", err)
		}
	})
}

// corrupt overwrites n bytes in the middle of the first file matching
// pattern in dir.
func corrupt(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	f, err := os.OpenFile(m[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	junk := bytes.Repeat([]byte{0xA5}, 64)
	if _, err := f.WriteAt(junk, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	return m[0]
}

func TestOpenRefusesCorruptDir(t *testing.T) {
	for _, c := range []struct{ name, pattern string }{
		{"manifest", "MANIFEST"},
		{"table", "*.sst"},
		{"format file", FormatFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, testOpts(t, dir))
			fill(t, s)
			_ = s.Close() // flushes the memtable into a table
			f := corrupt(t, dir, c.pattern)
			if c.pattern == FormatFile {
				_ = os.WriteFile(f, []byte("garbage"), 0o644)
			}
			s2, err := Open(testOpts(t, dir))
			if err == nil {
				_ = s2.Close()
				t.Fatalf("Open of a directory with a damaged %s succeeded", filepath.Base(f))
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "restore") {
				t.Fatalf("Open = %v, want ErrCorrupt saying what to do", err)
			}
			t.Logf("%s: %v", c.name, err)
		})
	}
}

func TestGCSchedule(t *testing.T) {
	o := testOpts(t, t.TempDir())
	o.GCInterval = 10 * time.Millisecond
	o.MemTableSize = 1 << 20 // value threshold ≈ 78 KiB: big values go to the value log
	o.vlogFileSize = 1 << 20
	s := mustOpen(t, o)
	big := make([]byte, 200<<10)
	// Each reopen flushes the memtable into an L0 table; past 5 of them
	// Badger compacts L0 into the next level, dropping the old versions
	// and recording their value-log bytes as garbage for the GC.
	for round := 0; round < 7; round++ {
		for i := 0; i < 6; i++ {
			big[0] = byte(i)
			if err := s.Put(Key("gc", "k"), big, 0); err != nil { // every old version is garbage
				t.Fatal(err)
			}
		}
		_ = s.Close()
		s = mustOpen(t, o)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (s.Stats().GCRuns < 3 || s.Stats().GCFilesReclaimed == 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	n, err := s.RunGC()
	st := s.Stats()
	t.Logf("GC: %+v (manual pass reclaimed %d)", st, n)
	if err != nil || st.GCRuns < 3 {
		t.Fatalf("GC runs %d, err %v", st.GCRuns, err)
	}
	if st.GCFilesReclaimed == 0 {
		t.Errorf("GC reclaimed no value-log file out of %d overwritten 200 KiB values", 42)
	}
	if v, err := s.Get(Key("gc", "k")); err != nil || v[0] != 5 {
		t.Fatalf("value after GC: %v", err)
	}
}

func TestBadgerLogRouting(t *testing.T) {
	l, w := testLogger(t)
	bl := badgerLogger{l}
	bl.Errorf("disk %s\n", "on fire")
	bl.Warningf("slow %d", 3)
	bl.Infof("chatty")
	bl.Debugf("chattier")
	if !w.has("level=ERROR") || !w.has("disk on fire") || !w.has("level=WARN") || !w.has("slow 3") || w.has("chatty") {
		t.Fatalf("routed lines: %q", w.lines)
	}
}

func TestBackupLoad(t *testing.T) {
	src := mustOpen(t, testOpts(t, t.TempDir()))
	fill(t, src)
	var buf bytes.Buffer
	if _, err := src.Backup(&buf, 0); err != nil {
		t.Fatal(err)
	}
	dst := mustOpen(t, testOpts(t, t.TempDir()))
	if err := dst.Load(&buf); err != nil {
		t.Fatal(err)
	}
	check(t, dst)
}

// TestKill9LosesNothingAcknowledged runs a child process that appends and
// reports each acknowledged seq, kills it with SIGKILL mid-stream, and
// checks every acknowledged entry is there after reopening.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if dir := os.Getenv("STATE_KILL9_CHILD"); dir != "" {
		kill9Child(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNothingAcknowledged$")
	cmd.Env = append(os.Environ(), "STATE_KILL9_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "acked "), 10, 64); err == nil {
			acked = n
		}
		if acked >= 3000 {
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
	if acked < 3000 {
		t.Fatalf("child acknowledged only %d appends", acked)
	}
	s := mustOpen(t, testOpts(t, dir))
	st, ok, err := s.Log().Stat("r")
	if err != nil || !ok || st.Last < acked || st.Count != st.Last || st.First != 1 {
		t.Fatalf("after kill -9 at ack %d: %+v %v %v", acked, st, ok, err)
	}
	next := uint64(1)
	_ = s.Log().Range("r", 0, math.MaxUint64, func(seq uint64, data []byte) bool {
		if seq != next || string(data) != fmt.Sprintf("r/%d", seq) {
			t.Fatalf("entry %d: seq %d data %q", next, seq, data)
		}
		next++
		return true
	})
	for i := uint64(1); i <= acked; i += 97 {
		if _, err := s.Get(Key("kv", strconv.FormatUint(i, 10))); err != nil {
			t.Fatalf("acknowledged put %d lost: %v", i, err)
		}
	}
	t.Logf("killed after %d acknowledged; %d entries recovered", acked, st.Count)
}

func kill9Child(dir string) {
	o := Options{Dir: dir, MemTableSize: 8 << 20, MinFreeBytes: 64 << 20}
	s, err := Open(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b, _ := s.NewBatcher()
	w := bufio.NewWriter(os.Stdout)
	done := make(chan error, 64)
	cb := func(err error) { done <- err }
	for seq := uint64(1); ; seq++ {
		_ = b.Put(Key("kv", strconv.FormatUint(seq, 10)), []byte("v"), 0, cb)
		_ = b.Append("r", seq, []byte(fmt.Sprintf("r/%d", seq)), cb)
		if seq%8 != 0 {
			continue
		}
		b.Flush()
		for i := 0; i < 16; i++ {
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
		fmt.Fprintf(w, "acked %d\n", seq)
		_ = w.Flush()
	}
}

package state

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// appendN appends seqs from..to of room with data "room/seq" and waits.
func appendN(t testing.TB, b *Batcher, room string, from, to uint64) {
	t.Helper()
	var r results
	for seq := from; seq <= to; seq++ {
		if err := b.Append(room, seq, []byte(fmt.Sprintf("%s/%d", room, seq)), r.cb()); err != nil {
			t.Fatal(err)
		}
	}
	b.Flush()
	for _, err := range r.wait(t) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// seqs returns the seqs Range yields, checking each entry's data.
func seqs(t testing.TB, l *Log, room string, from, to uint64) []uint64 {
	t.Helper()
	var got []uint64
	err := l.Range(room, from, to, func(seq uint64, data []byte) bool {
		if want := fmt.Sprintf("%s/%d", room, seq); string(data) != want {
			t.Errorf("seq %d data %q, want %q", seq, data, want)
		}
		got = append(got, seq)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func span64(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestLogAppendRange(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	for _, room := range []string{"b", "a", "c.long.name"} {
		appendN(t, b, room, 1, 100)
	}
	if got := seqs(t, l, "a", 0, math.MaxUint64); !slices.Equal(got, span64(1, 100)) {
		t.Fatalf("Range a = %v", got)
	}
	if got := seqs(t, l, "b", 40, 45); !slices.Equal(got, span64(40, 45)) {
		t.Fatalf("Range b 40..45 = %v", got)
	}
	if got := seqs(t, l, "b", 101, math.MaxUint64); len(got) != 0 {
		t.Fatalf("Range past the end = %v", got)
	}
	n := 0
	_ = l.Range("c.long.name", 10, math.MaxUint64, func(uint64, []byte) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Range stopped after %d, want 3", n)
	}
	rooms, err := l.Rooms()
	if err != nil || !slices.Equal(rooms, []string{"a", "b", "c.long.name"}) {
		t.Fatalf("Rooms = %v %v", rooms, err)
	}
	last, ok, err := l.LastSeq("a")
	if err != nil || !ok || last != 100 {
		t.Fatalf("LastSeq = %d %v %v", last, ok, err)
	}
	first, ok, err := l.FirstSeq("a")
	if err != nil || !ok || first != 1 {
		t.Fatalf("FirstSeq = %d %v %v", first, ok, err)
	}
	if _, ok, err := l.LastSeq("nope"); ok || err != nil {
		t.Fatalf("LastSeq of no room = %v %v", ok, err)
	}
	if _, ok, err := l.FirstSeq("nope"); ok || err != nil {
		t.Fatalf("FirstSeq of no room = %v %v", ok, err)
	}
	if got := seqs(t, l, "nope", 0, math.MaxUint64); len(got) != 0 {
		t.Fatalf("Range of no room = %v", got)
	}
	st, _, _ := l.Stat("a")
	if want := (RoomStat{First: 1, Last: 100, Count: 100, Bytes: 9*3 + 90*4 + 5}); st != want {
		t.Fatalf("Stat = %+v, want %+v", st, want)
	}
	// A room whose name is a prefix of another's stays apart.
	appendN(t, b, "ab", 1, 3)
	if got := seqs(t, l, "a", 0, math.MaxUint64); len(got) != 100 {
		t.Fatalf("Range a after ab = %d entries", len(got))
	}
}

func TestLogAppendTime(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := testOpts(t, "")
	o.Now = clock.Now
	s := mustOpen(t, o)
	b := mustBatcher(t, s)
	appendN(t, b, "r", 1, 1)
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(appendLogKey(nil, "r", 1))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := item.ValueCopy(nil)
	if got := time.Unix(0, int64(beUint64(v))); !got.Equal(clock.Now()) {
		t.Fatalf("stored time %v, want %v", got, clock.Now())
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestLogRetentionCount(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	appendN(t, b, "r", 1, 100)
	n, err := l.Trim("r", Retention{MaxCount: 30})
	if err != nil || n != 70 {
		t.Fatalf("Trim = %d %v, want 70", n, err)
	}
	if got := seqs(t, l, "r", 0, math.MaxUint64); !slices.Equal(got, span64(71, 100)) {
		t.Fatalf("Range after trim = %v", got)
	}
	st, _, _ := l.Stat("r")
	if st.First != 71 || st.Last != 100 || st.Count != 30 || st.Bytes != 29*4+5 {
		t.Fatalf("Stat = %+v", st)
	}
	if n, err := l.Trim("r", Retention{MaxCount: 30}); n != 0 || err != nil {
		t.Fatalf("second Trim = %d %v", n, err)
	}
	// Trim everything: the last seq stays known, appends go on from it.
	if n, _ := l.Trim("r", Retention{MaxCount: math.MaxInt64, MaxBytes: 1}); n != 30 {
		t.Fatalf("Trim to 1 byte removed %d, want 30", n)
	}
	if _, ok, _ := l.FirstSeq("r"); ok {
		t.Fatal("FirstSeq of an emptied room is ok")
	}
	if last, ok, _ := l.LastSeq("r"); !ok || last != 100 {
		t.Fatalf("LastSeq of an emptied room = %d %v, want 100", last, ok)
	}
	appendN(t, b, "r", 101, 102)
	if first, ok, _ := l.FirstSeq("r"); !ok || first != 101 {
		t.Fatalf("FirstSeq after new appends = %d %v", first, ok)
	}
	if got := seqs(t, l, "r", 0, math.MaxUint64); !slices.Equal(got, []uint64{101, 102}) {
		t.Fatalf("Range = %v", got)
	}
}

func TestLogRetentionBytes(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	var r results
	for seq := uint64(1); seq <= 20; seq++ {
		_ = b.Append("r", seq, make([]byte, 10), r.cb())
	}
	b.Flush()
	r.wait(t)
	n, err := l.Trim("r", Retention{MaxBytes: 95})
	if err != nil || n != 11 {
		t.Fatalf("Trim MaxBytes 95 of 20×10 B = %d %v, want 11", n, err)
	}
	st, _, _ := l.Stat("r")
	if st.First != 12 || st.Count != 9 || st.Bytes != 90 {
		t.Fatalf("Stat = %+v", st)
	}
}

func TestLogRetentionAge(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := testOpts(t, "")
	o.Now = clock.Now
	s := mustOpen(t, o)
	b := mustBatcher(t, s)
	l := s.Log()
	appendN(t, b, "r", 1, 10) // at t0
	clock.Add(time.Minute)
	appendN(t, b, "r", 11, 20) // at t0+1m
	clock.Add(30 * time.Second)
	if n, err := l.Trim("r", Retention{MaxAge: 2 * time.Minute}); n != 0 || err != nil {
		t.Fatalf("Trim 2m = %d %v, want 0", n, err)
	}
	n, err := l.Trim("r", Retention{MaxAge: time.Minute}) // t0 is 90s old, t0+1m 30s
	if err != nil || n != 10 {
		t.Fatalf("Trim 1m = %d %v, want 10", n, err)
	}
	if first, _, _ := l.FirstSeq("r"); first != 11 {
		t.Fatalf("FirstSeq = %d, want 11", first)
	}
	// Several bounds: each must hold.
	n, err = l.Trim("r", Retention{MaxAge: time.Hour, MaxCount: 5})
	if err != nil || n != 5 {
		t.Fatalf("Trim count 5 = %d %v", n, err)
	}
}

func TestLogTrimAllAndDeleteRoom(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	for _, room := range []string{"keep", "x.1", "x.2"} {
		appendN(t, b, room, 1, 50)
	}
	n, err := l.TrimAll(func(room string) Retention {
		if room == "keep" {
			return Retention{}
		}
		return Retention{MaxCount: 10}
	})
	if err != nil || n != 80 {
		t.Fatalf("TrimAll = %d %v, want 80", n, err)
	}
	for room, want := range map[string]uint64{"keep": 50, "x.1": 10, "x.2": 10} {
		if st, _, _ := l.Stat(room); st.Count != want {
			t.Errorf("%s: %d entries, want %d", room, st.Count, want)
		}
	}
	n, err = l.DeleteRoom("x.1")
	if err != nil || n != 10 {
		t.Fatalf("DeleteRoom = %d %v", n, err)
	}
	if _, ok, _ := l.LastSeq("x.1"); ok {
		t.Fatal("deleted room still has a log")
	}
	if rooms, _ := l.Rooms(); !slices.Equal(rooms, []string{"keep", "x.2"}) {
		t.Fatalf("Rooms = %v", rooms)
	}
	if n, err := l.DeleteRoom("x.1"); n != 0 || err != nil {
		t.Fatalf("DeleteRoom again = %d %v", n, err)
	}
	if _, err := l.Trim("r", Retention{MaxCount: -1}); err == nil {
		t.Fatal("negative retention accepted")
	}
}

func TestLogTrimLarge(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	appendN(t, b, "big", 1, 25_000)
	n, err := l.Trim("big", Retention{MaxCount: 100})
	if err != nil || n != 24_900 {
		t.Fatalf("Trim = %d %v", n, err)
	}
	if got := seqs(t, l, "big", 0, math.MaxUint64); !slices.Equal(got, span64(24_901, 25_000)) {
		t.Fatalf("Range after trim: %d entries from %v", len(got), got[:min(3, len(got))])
	}
}

// Trims beside appends to the same room: no conflicts between them, and
// the counts stay exact.
func TestLogTrimWhileAppending(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	const total = 5000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var r results
		for seq := uint64(1); seq <= total; seq++ {
			_ = b.Append("r", seq, []byte(fmt.Sprintf("r/%d", seq)), r.cb())
			if seq%100 == 0 {
				b.Flush()
			}
		}
		b.Flush()
		for _, err := range r.wait(t) {
			if err != nil {
				t.Error(err)
			}
		}
	}()
	var trims sync.WaitGroup
	for g := 0; g < 2; g++ {
		trims.Add(1)
		go func() {
			defer trims.Done()
			for i := 0; i < 50; i++ {
				if _, err := l.Trim("r", Retention{MaxCount: 100}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	trims.Wait()
	if _, err := l.Trim("r", Retention{MaxCount: 100}); err != nil {
		t.Fatal(err)
	}
	st, _, err := l.Stat("r")
	got := seqs(t, l, "r", 0, math.MaxUint64)
	var bytes uint64
	_ = l.Range("r", 0, math.MaxUint64, func(_ uint64, d []byte) bool { bytes += uint64(len(d)); return true })
	if err != nil || st.Count != 100 || uint64(len(got)) != st.Count || st.Bytes != bytes ||
		st.First != total-99 || st.Last != total || !slices.Equal(got, span64(total-99, total)) {
		t.Fatalf("Stat %+v (%v) vs Range: %d entries, %d bytes", st, err, len(got), bytes)
	}
}

func TestLogRangeSnapshot(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	appendN(t, b, "r", 1, 10)
	n := 0
	err := l.Range("r", 0, math.MaxUint64, func(seq uint64, _ []byte) bool {
		if seq == 1 {
			appendN(t, b, "r", 11, 20) // committed during the Range
			if last, _, _ := l.LastSeq("r"); last != 20 {
				t.Errorf("LastSeq inside Range = %d", last)
			}
		}
		n++
		return true
	})
	if err != nil || n != 10 {
		t.Fatalf("Range saw %d entries (%v), want its snapshot's 10", n, err)
	}
}

func TestLogBadRoom(t *testing.T) {
	s := memStore(t)
	if _, err := s.Log().Trim("", Retention{MaxCount: 1}); err == nil {
		t.Fatal("empty room accepted")
	}
	b := mustBatcher(t, s)
	if err := b.Append(string(make([]byte, 5000)), 1, nil, nil); err == nil {
		t.Fatal("5000-byte room accepted")
	}
}

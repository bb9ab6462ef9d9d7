package state

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestCommitIsAtomic: Commit applies puts and deletes together, later ops
// on a key win, and a commit too big for one transaction changes nothing.
func TestCommitIsAtomic(t *testing.T) {
	s := memStore(t)
	if err := s.Put(Key("n", "gone"), []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	err := s.Commit([]Op{
		{Key: Key("n", "a"), Value: []byte("1")},
		{Key: Key("n", "b"), Value: []byte("2")},
		{Key: Key("n", "a"), Value: []byte("3")},
		{Key: Key("n", "gone"), Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "3", "b": "2"} {
		if v, err := s.Get(Key("n", k)); err != nil || string(v) != want {
			t.Errorf("%s = %q %v, want %q", k, v, err, want)
		}
	}
	if _, err := s.Get(Key("n", "gone")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted key: %v", err)
	}
	// ~20 MB in one commit does not fit the 8 MiB memtable's transaction.
	big := make([]Op, 0, 2000)
	for i := range cap(big) {
		big = append(big, Op{Key: Key("big", fmt.Sprint(i)), Value: make([]byte, 10_000)})
	}
	big = append(big, Op{Key: Key("n", "b"), Delete: true})
	if err := s.Commit(big); !errors.Is(err, ErrTooBig) {
		t.Fatalf("a too-big commit: %v", err)
	}
	if v, err := s.Get(Key("n", "b")); err != nil || string(v) != "2" {
		t.Errorf("after a refused commit, b = %q %v", v, err)
	}
	if _, err := s.Get(Key("big", "0")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused commit wrote: %v", err)
	}
	if err := s.Commit([]Op{{Key: []byte{0}, Value: nil}}); !errors.Is(err, ErrBadKey) {
		t.Errorf("a room-log key: %v", err)
	}
}

// TestLogRewrite: Rewrite changes the data of the entries fn picks, keeps
// their seqs, append times and the others, and skips trimmed entries.
func TestLogRewrite(t *testing.T) {
	s := memStore(t)
	b := mustBatcher(t, s)
	l := s.Log()
	appendN(t, b, "r", 1, 50)
	if _, err := l.Trim("r", Retention{MaxCount: 40}); err != nil {
		t.Fatal(err)
	}
	n, err := l.Rewrite("r", func(seq uint64, data []byte) ([]byte, bool) {
		return []byte("erased"), seq%2 == 0 || seq < 5 // 1..4 are trimmed
	})
	if err != nil || n != 20 {
		t.Fatalf("Rewrite = %d %v, want 20", n, err)
	}
	var got []string
	_ = l.Range("r", 0, math.MaxUint64, func(seq uint64, data []byte) bool {
		got = append(got, fmt.Sprintf("%d:%s", seq, data))
		return true
	})
	if len(got) != 40 || got[0] != "11:r/11" || got[1] != "12:erased" || got[39] != "50:erased" {
		t.Fatalf("after Rewrite: %s", strings.Join(got, " "))
	}
	st, _, _ := l.Stat("r")
	if st.First != 11 || st.Last != 50 || st.Count != 40 {
		t.Fatalf("stat after Rewrite: %+v", st)
	}
}

package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKeyLayout(t *testing.T) {
	k := Key("counts", "user:7")
	want := append([]byte{tagKV, 0, 6}, "countsuser:7"...)
	if !bytes.Equal(k, want) {
		t.Fatalf("Key = %x, want %x", k, want)
	}
	if got := AppendKey(nil, "counts", []byte("user:7")); !bytes.Equal(got, k) {
		t.Fatalf("AppendKey = %x, want %x", got, k)
	}
	ns, key, ok := SplitKey(k)
	if !ok || string(ns) != "counts" || string(key) != "user:7" {
		t.Fatalf("SplitKey = %q %q %v", ns, key, ok)
	}
	for _, bad := range [][]byte{nil, {tagKV}, {tagKV, 0, 9, 'a'}, appendLogKey(nil, "r", 1)} {
		if _, _, ok := SplitKey(bad); ok {
			t.Errorf("SplitKey(%x) ok", bad)
		}
	}
	// A namespace never prefixes a longer one: "a" + "b…" ≠ "ab" + "…".
	if bytes.HasPrefix(Key("ab", "x"), Key("a", "")) {
		t.Error("namespace a is a prefix of namespace ab")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic for a 70000-byte namespace")
			}
		}()
		Key(strings.Repeat("n", 70000), "k")
	}()
	lk := appendLogKey(nil, "room", 0x0102030405060708)
	room, seq, ok := parseLogKey(lk)
	if !ok || string(room) != "room" || seq != 0x0102030405060708 {
		t.Fatalf("parseLogKey = %q %x %v", room, seq, ok)
	}
	// Entries of a room sort by seq.
	if bytes.Compare(appendLogKey(nil, "r", 255), appendLogKey(nil, "r", 256)) >= 0 {
		t.Error("log keys do not sort by seq")
	}
}

func TestKeyedCRUD(t *testing.T) {
	s := memStore(t)
	k := Key("ns", "a")
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get absent = %v, want ErrNotFound", err)
	}
	if err := s.Put(k, []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(k); err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q %v", v, err)
	}
	if err := s.Put(k, []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 16)
	if v, err := s.AppendValue(buf[:0], k); err != nil || string(v) != "v2" || &v[0] != &buf[:1][0] {
		t.Fatalf("AppendValue = %q %v (or did not use dst)", v, err)
	}
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted = %v", err)
	}
	if err := s.Delete(k); err != nil {
		t.Fatalf("Delete absent: %v", err)
	}
	// Present but empty is not absent.
	if err := s.Put(k, nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(k); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get empty = %v %v, want non-nil empty", v, err)
	}
	// Raw keys cannot reach the log or the metadata.
	for _, bad := range [][]byte{[]byte("raw"), formatKey, appendLogKey(nil, "r", 1), nil} {
		if err := s.Put(bad, []byte("x"), 0); !errors.Is(err, ErrBadKey) {
			t.Errorf("Put(%x) = %v, want ErrBadKey", bad, err)
		}
		if _, err := s.Get(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("Get(%x) = %v, want ErrBadKey", bad, err)
		}
	}
	if err := s.Put(k, nil, -time.Second); err == nil {
		t.Error("negative TTL accepted")
	}
}

func TestExpiresAtRoundsUp(t *testing.T) {
	base := time.Unix(1000, 0)
	for _, c := range []struct {
		now  time.Time
		ttl  time.Duration
		want uint64
	}{
		{base, 0, 0},
		{base, time.Second, 1001},
		{base, 1500 * time.Millisecond, 1002},
		{base.Add(100 * time.Millisecond), time.Second, 1002},
		{base, time.Nanosecond, 1001},
	} {
		if got := expiresAt(c.now, c.ttl); got != c.want {
			t.Errorf("expiresAt(%v, %v) = %d, want %d", c.now, c.ttl, got, c.want)
		}
	}
}

func TestTTLExpiry(t *testing.T) {
	t.Parallel()
	s := memStore(t)
	b := mustBatcher(t, s)
	short, long, batched := Key("ttl", "short"), Key("ttl", "long"), Key("ttl", "batched")
	if err := s.Put(short, []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(long, []byte("y"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(batched, []byte("z"), time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{short, long, batched} {
		if _, err := s.Get(k); err != nil {
			t.Fatalf("Get %q right after Put: %v", k, err)
		}
	}
	// Expiry is rounded up to the next second: at most 2s later.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, e1 := s.Get(short)
		_, e2 := s.Get(batched)
		if errors.Is(e1, ErrNotFound) && errors.Is(e2, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1s TTL keys still there after 3s: %v %v", e1, e2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Get(long); err != nil {
		t.Fatalf("1h TTL key gone: %v", err)
	}
	n := 0
	if err := s.Scan(Key("ttl", ""), func(k, v []byte) bool { n++; return true }); err != nil || n != 1 {
		t.Fatalf("Scan after expiry saw %d keys (%v), want 1", n, err)
	}
}

func TestUpdateConcurrent(t *testing.T) {
	s := memStore(t)
	k := Key("ctr", "hits")
	const writers, each = 8, 200
	incr := func(old []byte) ([]byte, error) {
		var n uint64
		if old != nil {
			n = binary.BigEndian.Uint64(old)
		}
		return binary.BigEndian.AppendUint64(nil, n+1), nil
	}
	b := mustBatcher(t, s)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Update(k, incr); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// A Batcher writing other keys meanwhile must not disturb it, and
	// one writing the same key must make Update retry, not lose counts.
	other := Key("ctr", "other")
	for i := 0; i < 200; i++ {
		_ = b.Put(other, []byte{byte(i)}, 0, nil)
		b.Flush()
	}
	wg.Wait()
	v, err := s.Get(k)
	if err != nil || binary.BigEndian.Uint64(v) != writers*each {
		t.Fatalf("counter = %x %v, want %d", v, err, writers*each)
	}
	t.Logf("conflicts retried: %d", s.Stats().Conflicts)
}

func TestUpdateSemantics(t *testing.T) {
	s := memStore(t)
	k := Key("u", "k")
	// Absent: old is nil; returning nil leaves it absent.
	if err := s.Update(k, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("old = %q, want nil", old)
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after nil update: %v", err)
	}
	if err := s.Update(k, func([]byte) ([]byte, error) { return []byte{}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(k, func(old []byte) ([]byte, error) {
		if old == nil || len(old) != 0 {
			t.Errorf("old = %v, want non-nil empty", old)
		}
		return []byte("set"), nil
	}); err != nil {
		t.Fatal(err)
	}
	// An error from fn aborts, unwrapped.
	boom := errors.New("boom")
	if err := s.Update(k, func([]byte) ([]byte, error) { return []byte("no"), boom }); err != boom {
		t.Fatalf("Update error = %v, want boom", err)
	}
	if v, _ := s.Get(k); string(v) != "set" {
		t.Fatalf("aborted update wrote %q", v)
	}
	// nil deletes.
	if err := s.Update(k, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete update: %v", err)
	}
}

func TestUpdateKeepsTTL(t *testing.T) {
	s := memStore(t)
	k := Key("u", "ttl")
	if err := s.Put(k, []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(k, func([]byte) ([]byte, error) { return []byte("b"), nil }); err != nil {
		t.Fatal(err)
	}
	var exp uint64
	txn := s.db.NewTransaction(false)
	item, err := txn.Get(k)
	if err == nil {
		exp = item.ExpiresAt()
	}
	txn.Discard()
	if err != nil || exp == 0 || exp < uint64(time.Now().Add(59*time.Minute).Unix()) {
		t.Fatalf("expiry after Update = %d (%v), want about an hour from now", exp, err)
	}
}

func TestScanPrefix(t *testing.T) {
	s := memStore(t)
	put := func(ns, k string) {
		if err := s.Put(Key(ns, k), []byte(ns+"/"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		put("a", fmt.Sprintf("user:%d", i))
		put("a", fmt.Sprintf("item:%d", i))
		put("ab", fmt.Sprintf("user:%d", i))
	}
	collect := func(prefix []byte, limit int) []string {
		var got []string
		err := s.Scan(prefix, func(k, v []byte) bool {
			ns, key, ok := SplitKey(k)
			if !ok || string(v) != string(ns)+"/"+string(key) {
				t.Errorf("Scan gave %x = %q", k, v)
			}
			got = append(got, string(key))
			return len(got) < limit
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := collect(Key("a", "user:"), 100); strings.Join(got, ",") != "user:0,user:1,user:2,user:3,user:4" {
		t.Fatalf("Scan a/user: = %v", got)
	}
	if got := collect(Key("a", ""), 100); len(got) != 10 {
		t.Fatalf("Scan a = %v (want 10 keys, none of ab)", got)
	}
	if got := collect(Key("ab", ""), 2); len(got) != 2 {
		t.Fatalf("Scan ab stopped after %d, want 2", len(got))
	}
	if err := s.Scan([]byte{tagLog}, func(k, v []byte) bool { return true }); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Scan of the log's prefix = %v, want ErrBadKey", err)
	}
}

type profile struct {
	Name   string
	Visits int
	Tags   []string
}

func TestMsgpackHelpers(t *testing.T) {
	s := memStore(t)
	k := Key("profiles", "u1")
	in := profile{Name: "ada", Visits: 3, Tags: []string{"x", "y"}}
	if err := PutValue(s, k, in, 0); err != nil {
		t.Fatal(err)
	}
	out, err := GetValue[profile](s, k)
	if err != nil || out.Name != in.Name || out.Visits != 3 || len(out.Tags) != 2 {
		t.Fatalf("GetValue = %+v %v", out, err)
	}
	if _, err := GetValue[profile](s, Key("profiles", "none")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetValue absent = %v", err)
	}
	if err := s.Put(k, []byte{0xc1}, 0); err != nil { // 0xc1: never used in msgpack
		t.Fatal(err)
	}
	if _, err := GetValue[profile](s, k); err == nil || !strings.HasPrefix(err.Error(), "state: decode") {
		t.Fatalf("GetValue of garbage = %v", err)
	}
	b := mustBatcher(t, s)
	var r results
	if err := PutValueBatch(b, Key("profiles", "u2"), in, 0, r.cb()); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	if errs := r.wait(t); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if out, err := GetValue[profile](s, Key("profiles", "u2")); err != nil || out.Name != "ada" {
		t.Fatalf("batched GetValue = %+v %v", out, err)
	}
	if err := PutValueBatch(b, k, make(chan int), 0, nil); err == nil {
		t.Fatal("encoding a channel did not fail")
	}
}

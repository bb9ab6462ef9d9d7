package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type expired struct {
	key         string
	data        string
	first, last time.Time
}

func (e expired) String() string {
	return fmt.Sprintf("%s=%q[%v..%v]", e.key, e.data, e.first.Sub(t0), e.last.Sub(t0))
}

// sessHarness: a Sessions on an injected clock, recording OnExpire.
type sessHarness struct {
	t     *testing.T
	store *Store
	b     *Batcher
	clock *fakeClock
	s     *Sessions
	got   []expired
}

func newSessHarness(t *testing.T, store *Store, clock *fakeClock, o SessionOptions) *sessHarness {
	t.Helper()
	h := &sessHarness{t: t, store: store, clock: clock, b: mustBatcher(t, store)}
	if o.Namespace == "" {
		o.Namespace = "sess:test"
	}
	if o.Idle == 0 {
		o.Idle = 10 * time.Second
	}
	o.Batcher, o.Now = h.b, clock.Now
	o.OnExpire = func(key string, data []byte, first, last time.Time) {
		h.got = append(h.got, expired{key, string(data), first.UTC(), last.UTC()})
	}
	s, err := store.NewSessions(o)
	if err != nil {
		t.Fatalf("NewSessions: %v", err)
	}
	h.s = s
	return h
}

// expired returns and clears the OnExpire calls so far.
func (h *sessHarness) expired() []expired {
	g := h.got
	h.got = nil
	return g
}

func (h *sessHarness) wantExpired(want ...expired) {
	h.t.Helper()
	got := h.expired()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Fatalf("expired:\n got %v\nwant %v", got, want)
	}
}

// record reads key's persisted record after syncing the batcher.
func (h *sessHarness) record(key string) (first, last time.Time, data string, ok bool) {
	h.t.Helper()
	if err := h.b.Sync(); err != nil {
		h.t.Fatalf("Sync: %v", err)
	}
	v, err := h.store.Get(Key("sess:test", key))
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, time.Time{}, "", false
	}
	if err != nil {
		h.t.Fatalf("Get: %v", err)
	}
	if len(v) < sessionHdr || v[0] != sessionVersion {
		h.t.Fatalf("bad record %x", v)
	}
	first = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:]))).UTC()
	last = time.Unix(0, int64(binary.BigEndian.Uint64(v[9:]))).UTC()
	return first, last, string(v[sessionHdr:]), true
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestSessionTouchExpiryOrder(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	s := h.s
	s.Touch("a", []byte("A1"))
	clock.Add(time.Second)
	s.Touch("b", []byte("B"))
	clock.Add(time.Second)
	s.Touch("c", nil)
	clock.Add(time.Second)
	s.Touch("a", nil) // refresh, data kept
	clock.Add(time.Second)
	s.Touch("a", []byte("A2")) // refresh, data replaced
	if s.Len() != 3 {
		t.Fatalf("Len = %d", s.Len())
	}
	if d, ok := s.Get("a"); !ok || string(d) != "A2" {
		t.Fatalf("Get(a) = %q, %v", d, ok)
	}
	if d, ok := s.Get("c"); !ok || d == nil || len(d) != 0 {
		t.Fatalf("Get(c) = %q (nil %v), %v", d, d == nil, ok)
	}
	if _, ok := s.Get("zz"); ok {
		t.Fatal("Get(zz) found")
	}

	clock.now = at(11*time.Second - time.Nanosecond) // b idle just under 10s
	s.Advance()
	h.wantExpired()
	clock.now = at(11 * time.Second)
	s.Advance()
	h.wantExpired(expired{"b", "B", at(time.Second), at(time.Second)})
	if _, ok := s.Get("b"); ok || s.Len() != 2 {
		t.Fatalf("b still held (Len %d)", s.Len())
	}
	clock.now = at(time.Hour)
	s.Advance()
	h.wantExpired(expired{"c", "", at(2 * time.Second), at(2 * time.Second)}, expired{"a", "A2", t0, at(4 * time.Second)})
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, _, _, ok := h.record(k); ok {
			t.Fatalf("record of %s left after expiry", k)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSessionTouchAfterIdleStartsNewSession(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	h.s.Touch("a", []byte("old"))
	clock.Add(10 * time.Second) // idle == Idle: expired, not yet advanced
	if d, ok := h.s.Get("a"); !ok || string(d) != "old" {
		t.Fatalf("Get before Advance = %q, %v", d, ok)
	}
	h.s.Touch("a", nil)
	h.wantExpired(expired{"a", "old", t0, t0})
	d, ok := h.s.Get("a")
	if !ok || len(d) != 0 {
		t.Fatalf("new session data = %q, %v", d, ok)
	}
	first, last, data, ok := h.record("a")
	if !ok || !first.Equal(at(10*time.Second)) || !last.Equal(first) || data != "" {
		t.Fatalf("record = %v %v %q %v", first, last, data, ok)
	}
}

func TestSessionClockNeverGoesBack(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	h.s.Touch("a", nil)
	clock.now = at(-time.Hour)
	h.s.Touch("b", nil) // counts as t0
	clock.now = at(10 * time.Second)
	h.s.Advance()
	h.wantExpired(expired{"a", "", t0, t0}, expired{"b", "", t0, t0})
}

func TestSessionDelete(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	h.s.Touch("a", []byte("x"))
	h.s.Touch("b", []byte("y"))
	if _, _, _, ok := h.record("a"); !ok {
		t.Fatal("no record of a")
	}
	h.s.Delete("a")
	h.s.Delete("nope")
	if _, ok := h.s.Get("a"); ok || h.s.Len() != 1 {
		t.Fatalf("a still held, Len %d", h.s.Len())
	}
	if _, _, _, ok := h.record("a"); ok {
		t.Fatal("record of a left after Delete")
	}
	clock.Add(time.Minute)
	h.s.Advance()
	h.wantExpired(expired{"b", "y", t0, t0}) // no OnExpire for a
}

func TestSessionMaxSessions(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{MaxSessions: 2})
	h.s.Touch("a", []byte("1"))
	clock.Add(time.Second)
	h.s.Touch("b", []byte("2"))
	clock.Add(time.Second)
	h.s.Touch("a", nil) // a is now the most recent
	clock.Add(time.Second)
	h.s.Touch("c", []byte("3")) // evicts b
	h.wantExpired(expired{"b", "2", at(time.Second), at(time.Second)})
	if h.s.Len() != 2 {
		t.Fatalf("Len = %d", h.s.Len())
	}
	if _, _, _, ok := h.record("b"); ok {
		t.Fatal("record of evicted b left")
	}
	h.s.Touch("c", nil) // refresh: no eviction
	h.wantExpired()
	h.s.Touch("d", nil)
	h.wantExpired(expired{"a", "1", t0, at(2 * time.Second)})
}

func TestSessionWriteThrottle(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{Idle: 40 * time.Second}) // Idle/4 = 10s
	s := h.s
	wantRec := func(last time.Duration, data string) {
		t.Helper()
		first, l, d, ok := h.record("k")
		if !ok || !first.Equal(t0) || !l.Equal(at(last)) || d != data {
			t.Fatalf("record = %v %v %q %v; want last %v data %q", first.Sub(t0), l.Sub(t0), d, ok, last, data)
		}
	}
	s.Touch("k", []byte("v1"))
	wantRec(0, "v1")
	clock.Add(time.Second)
	s.Touch("k", nil)
	clock.Add(time.Second)
	s.Touch("k", []byte("v1")) // same data: not a change
	wantRec(0, "v1")
	clock.now = at(10*time.Second - time.Nanosecond)
	s.Touch("k", nil)
	wantRec(0, "v1")
	clock.now = at(10 * time.Second) // last record 10s old: write
	s.Touch("k", nil)
	wantRec(10*time.Second, "v1")
	clock.Add(time.Second)
	s.Touch("k", []byte("v2")) // data changed: write at once
	wantRec(11*time.Second, "v2")
	clock.Add(time.Second)
	s.Touch("k", []byte("v3!")) // other length
	wantRec(12*time.Second, "v3!")
	clock.Add(time.Second)
	s.Touch("k", nil)
	wantRec(12*time.Second, "v3!")
	if got := h.store.Stats().Writes; got != 4 {
		t.Fatalf("store writes = %d, want 4 (t=0, 10s, 11s, 12s)", got)
	}
}

// TestSessionPersistence: sessions survive a Close/Open of the store;
// one whose idle timeout passed while it was down expires at the first
// Advance.
func TestSessionPersistence(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: t0}
	o := SessionOptions{Idle: time.Minute}

	store, err := Open(testOpts(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	h := newSessHarness(t, store, clock, o)
	h.s.Touch("a", []byte("alpha"))
	h.s.Touch("b", []byte("beta"))
	h.s.Touch("gone", nil)
	h.s.Delete("gone")
	clock.Add(50 * time.Second)
	h.s.Touch("b", []byte("beta2"))
	h.s.Touch("c", []byte(strings.Repeat("c", 100)))
	if err := h.b.Sync(); err != nil {
		t.Fatal(err)
	}
	h.b.Close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Down for 20s: a (idle 70s) timed out meanwhile, b and c (20s) not.
	clock.Add(20 * time.Second)
	store = mustOpen(t, testOpts(t, dir))
	h = newSessHarness(t, store, clock, o)
	if err := h.s.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if h.s.Len() != 3 {
		t.Fatalf("Len after Load = %d", h.s.Len())
	}
	if d, ok := h.s.Get("b"); !ok || string(d) != "beta2" {
		t.Fatalf("Get(b) = %q, %v", d, ok)
	}
	h.s.Advance()
	h.wantExpired(expired{"a", "alpha", t0, t0})
	if _, _, _, ok := h.record("a"); ok {
		t.Fatal("record of a left")
	}
	if err := h.s.Load(); err == nil {
		t.Fatal("second Load with sessions held succeeded")
	}
	clock.Add(40 * time.Second)
	h.s.Advance()
	h.wantExpired(expired{"b", "beta2", t0, at(50 * time.Second)}, expired{"c", strings.Repeat("c", 100), at(50 * time.Second), at(50 * time.Second)})
	if err := h.s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSessionLoadOrderAndBadRecord(t *testing.T) {
	store := memStore(t)
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, store, clock, SessionOptions{})
	// Touched in the reverse of key order, so Load must sort by lastSeen.
	for i, k := range []string{"z", "y", "x"} {
		clock.now = at(time.Duration(i) * time.Second)
		h.s.Touch(k, []byte(k))
	}
	if err := h.b.Sync(); err != nil {
		t.Fatal(err)
	}
	h2 := newSessHarness(t, store, clock, SessionOptions{})
	if err := h2.s.Load(); err != nil {
		t.Fatal(err)
	}
	clock.now = at(time.Hour)
	h2.s.Advance()
	h2.wantExpired(expired{"z", "z", t0, t0}, expired{"y", "y", at(time.Second), at(time.Second)}, expired{"x", "x", at(2 * time.Second), at(2 * time.Second)})

	if err := store.Put(Key("sess:test", "junk"), []byte("not a session"), 0); err != nil {
		t.Fatal(err)
	}
	h3 := newSessHarness(t, store, clock, SessionOptions{})
	if err := h3.s.Load(); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Fatalf("Load over a bad record: %v", err)
	}
	if h3.s.Len() != 0 {
		t.Fatalf("Len after failed Load = %d", h3.s.Len())
	}
}

func TestSessionOptionsValidate(t *testing.T) {
	store := memStore(t)
	b := mustBatcher(t, store)
	other := mustBatcher(t, memStore(t))
	for _, tc := range []struct {
		o    SessionOptions
		want string
	}{
		{SessionOptions{Idle: time.Second, Batcher: b}, "Namespace"},
		{SessionOptions{Namespace: "n", Batcher: b}, "Idle"},
		{SessionOptions{Namespace: "n", Idle: time.Minute, Grace: time.Second, Batcher: b}, "Grace"},
		{SessionOptions{Namespace: "n", Idle: time.Second}, "Batcher is nil"},
		{SessionOptions{Namespace: "n", Idle: time.Second, Batcher: other}, "another Store"},
		{SessionOptions{Namespace: "n", Idle: time.Second, Batcher: b, MaxSessions: -1}, "MaxSessions"},
	} {
		if _, err := store.NewSessions(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one about %s", tc.o, err, tc.want)
		}
	}
}

func TestSessionOnExpireReentryPanics(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	h.s.onExpire = func(string, []byte, time.Time, time.Time) { h.s.Touch("x", nil) }
	h.s.Touch("a", nil)
	clock.Add(time.Minute)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "OnExpire") {
			t.Fatalf("recover = %v", r)
		}
	}()
	h.s.Advance()
}

func TestSessionErrAfterBatcherClosed(t *testing.T) {
	clock := &fakeClock{now: t0}
	h := newSessHarness(t, memStore(t), clock, SessionOptions{})
	h.b.Close()
	h.s.Touch("a", nil)
	if !errors.Is(h.s.Err(), ErrClosed) {
		t.Fatalf("Err = %v", h.s.Err())
	}
	if h.s.Len() != 1 {
		t.Fatalf("Len = %d", h.s.Len())
	}
	h.s.Touch(strings.Repeat("k", 70000), nil)
	if h.s.Len() != 1 {
		t.Fatal("over-long key created a session")
	}
}

// TestSessionModel checks random operations against a plain model,
// with a small compaction threshold so the arena is rewritten often.
func TestSessionModel(t *testing.T) {
	type msess struct {
		data        string
		first, last time.Time
		seq         int // touch order, for equal lastSeen
	}
	clock := &fakeClock{now: t0}
	const idle = 100 * time.Millisecond
	h := newSessHarness(t, memStore(t), clock, SessionOptions{Idle: idle, MaxSessions: 40})
	h.s.compactMin = 64
	model := map[string]*msess{}
	seq := 0
	rng := rand.New(rand.NewPCG(1, 2))
	oldest := func() string {
		var best string
		for k, m := range model {
			if best == "" || m.last.Before(model[best].last) || (m.last.Equal(model[best].last) && m.seq < model[best].seq) {
				best = k
			}
		}
		return best
	}
	var want []expired
	expireModel := func(k string) {
		m := model[k]
		want = append(want, expired{k, m.data, m.first, m.last})
		delete(model, k)
	}
	for step := 0; step < 20000; step++ {
		now := clock.Now()
		k := fmt.Sprintf("k%d", rng.IntN(60))
		switch op := rng.IntN(10); {
		case op < 6:
			var data []byte
			if rng.IntN(2) == 0 {
				data = []byte(strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(20)))
			}
			seq++
			m := model[k]
			if m != nil && now.Sub(m.last) >= idle {
				expireModel(k)
				m = nil
			}
			if m == nil {
				m = &msess{data: string(data), first: now}
				model[k] = m
				m.last, m.seq = now, seq
				for len(model) > 40 {
					expireModel(oldest())
				}
			} else if data != nil {
				m.data = string(data)
			}
			m.last, m.seq = now, seq
			h.s.Touch(k, data)
		case op < 7:
			delete(model, k)
			h.s.Delete(k)
		case op < 8:
			for {
				o := oldest()
				if o == "" || now.Sub(model[o].last) < idle {
					break
				}
				expireModel(o)
			}
			h.s.Advance()
		default:
			clock.Add(time.Duration(rng.IntN(int(idle / 5))))
		}
		got := h.expired()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d: expired\n got %v\nwant %v", step, got, want)
		}
		want = want[:0]
		if h.s.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, h.s.Len(), len(model))
		}
		if m := model[k]; m != nil {
			if d, ok := h.s.Get(k); !ok || string(d) != m.data {
				t.Fatalf("step %d: Get(%s) = %q %v, want %q", step, k, d, ok, m.data)
			}
		} else if _, ok := h.s.Get(k); ok {
			t.Fatalf("step %d: Get(%s) found", step, k)
		}
	}
	if h.s.garbage*2 > len(h.s.arena) && h.s.garbage >= h.s.compactMin {
		t.Fatalf("arena not compacted: %d garbage of %d", h.s.garbage, len(h.s.arena))
	}
	// The store holds exactly the model's sessions.
	if err := h.b.Sync(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := h.store.Scan(Key("sess:test", ""), func(k, v []byte) bool {
		_, key, _ := SplitKey(k)
		keys = append(keys, string(key))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	var mk []string
	for k := range model {
		mk = append(mk, k)
	}
	slices.Sort(mk)
	if fmt.Sprint(keys) != fmt.Sprint(mk) {
		t.Fatalf("store keys %v, model %v", keys, mk)
	}
}

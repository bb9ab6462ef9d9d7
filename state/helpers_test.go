package state

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlog is a slog handler target that writes into the test's log, and
// remembers what it got so tests can look for a line.
type tlog struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.lines = append(w.lines, string(p))
	w.mu.Unlock()
	return len(p), nil
}

func (w *tlog) has(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func testLogger(t testing.TB) (*slog.Logger, *tlog) {
	w := &tlog{t: t}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			for _, l := range w.lines {
				t.Log(strings.TrimSpace(l))
			}
			w.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), w
}

// testOpts: small memtables (8 MiB) so tests stay light.
func testOpts(t testing.TB, dir string) Options {
	l, _ := testLogger(t)
	o := Options{Dir: dir, InMemory: dir == "", Logger: l, MemTableSize: 8 << 20}
	if dir != "" {
		o.MinFreeBytes = 64 << 20
	}
	return o
}

func mustOpen(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func memStore(t testing.TB) *Store { return mustOpen(t, testOpts(t, "")) }

func mustBatcher(t testing.TB, s *Store) *Batcher {
	t.Helper()
	b, err := s.NewBatcher()
	if err != nil {
		t.Fatalf("NewBatcher: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// fakeClock is an Options.Now that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// results collects batcher callback outcomes.
type results struct {
	mu   sync.Mutex
	errs []error
	wg   sync.WaitGroup
}

// cb returns a callback that records its outcome; wait() waits for all.
func (r *results) cb() func(error) {
	r.wg.Add(1)
	return func(err error) {
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		r.wg.Done()
	}
}

func (r *results) wait(t testing.TB) []error {
	t.Helper()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callbacks not called within 10s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

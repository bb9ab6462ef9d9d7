package netpoll

import (
	"context"
	"sync"
	"testing"
	"time"
)

// orderHandler records the order messages are handled in; each message
// costs slow (a handler doing real work), so a burst takes a while.
type orderHandler struct {
	mu   sync.Mutex
	seen []string
	slow time.Duration
}

func (h *orderHandler) OnOpen(c *Conn) {}
func (h *orderHandler) OnMessage(c *Conn, op byte, payload []byte) {
	h.mu.Lock()
	h.seen = append(h.seen, string(payload))
	h.mu.Unlock()
	time.Sleep(h.slow)
}
func (h *orderHandler) OnClose(c *Conn, err error) {}
func (h *orderHandler) OnWake(l *Loop)             {}

// position returns the index at which msg was handled (-1: not yet) and
// how many messages were handled.
func (h *orderHandler) position(msg string) (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.seen {
		if s == msg {
			return i, len(h.seen)
		}
	}
	return -1, len(h.seen)
}

// fairnessPosition starts a one-loop server with quantum, sends a burst
// of n frames on one connection and then one frame on another, and
// returns where that frame was handled among all.
func fairnessPosition(t *testing.T, quantum, n int) int {
	h := &orderHandler{slow: 100 * time.Microsecond}
	s, err := NewServer(Options{Addr: "127.0.0.1:0", Loops: 1, ReadQuantum: quantum}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	flood, other := rawUpgrade(t, s), rawUpgrade(t, s)
	defer flood.Close()
	defer other.Close()
	var burst []byte
	for range n {
		burst = append(burst, maskedFrame(0x81, []byte("a"))...)
	}
	if _, err := flood.Write(burst); err != nil { // one write: one read on the server
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the loop is into the burst
	if _, err := other.Write(maskedFrame(0x81, []byte("b"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pos, total := h.position("b"); pos >= 0 && total == n+1 {
			return pos
		}
		time.Sleep(5 * time.Millisecond)
	}
	pos, total := h.position("b")
	t.Fatalf("quantum %d: handled %d of %d messages in 10 s (b at %d)", quantum, total, n+1, pos)
	return -1
}

// A connection that sends a burst cannot hold its loop: after
// ReadQuantum of its frames the loop turns to the other connections with
// input, so a well-behaved connection's message waits for a quantum or
// two, not for the whole burst (without the quantum it waits for all of
// it: the control run).
func TestReadQuantumFairness(t *testing.T) {
	const n = 1000 // 0.1 s of handling at 100 µs a message
	if pos := fairnessPosition(t, 64, n); pos < 0 || pos > 4*64 {
		t.Errorf("with ReadQuantum 64, the other connection's message was handled %d-th of %d: it waited for the burst", pos, n+1)
	}
	if pos := fairnessPosition(t, 1<<20, n); pos != n {
		t.Errorf("control: without a quantum the other connection's message was handled %d-th, want after the whole burst (%d)", pos, n)
	}
}

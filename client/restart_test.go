package client

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"streamd/engine"
)

// TestServerRestartMidStream: the engine (with a data directory and a
// durable room) is stopped and started again on the same address while
// the client is joined and publishing. The client reconnects on its
// backoff schedule, re-joins, recovers every message published while it
// was away (from the restarted engine's log), and its queued publishes
// arrive once and in order.
func TestServerRestartMidStream(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := engine.Config{Listen: "127.0.0.1:0", Auth: engine.AuthConfig{Anonymous: true}, Data: dir, HeartbeatInterval: time.Second,
		Rooms: []engine.RoomPolicy{{Match: "d.*", Durable: true}}}
	e1, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start(); err != nil {
		t.Fatal(err)
	}
	addr := e1.Addr().String()
	url := "ws://" + addr + "/ws"

	var mu sync.Mutex
	var sleeps []time.Duration
	opts := quietOpts()
	opts.Producer = "restart-test"
	opts.Rand = func() float64 { return 0.5 } // no jitter: exact intervals
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		return sleepCtx(ctx, d)
	}
	ctx := context.Background()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	handler, got := collect()
	if err := c.Join(ctx, "d.orders", handler); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := c.Publish(ctx, "d.orders", i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 messages before the restart", func() bool { return len(got()) == 3 })

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = e1.Close(cctx)
	cancel()
	// queued while the server is down (the client is reconnecting)
	results := make(chan error, 3)
	for i := 4; i <= 6; i++ {
		go func(i int) { _, err := c.Publish(ctx, "d.orders", i); results <- err }(i)
		time.Sleep(20 * time.Millisecond) // keep their order
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects

	cfg.Listen = addr
	var e2 *engine.Engine
	for deadline := time.Now().Add(5 * time.Second); ; {
		if e2, err = engine.New(cfg); err == nil {
			if err = e2.Start(); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer e2.Close(context.Background())
	// published by someone else on the new engine before our client is back
	if _, err := e2.Publish("d.orders", []byte(`"from-server"`)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := <-results; err != nil {
			t.Fatalf("queued publish: %v", err)
		}
	}
	waitFor(t, "every message after the restart", func() bool { return len(got()) >= 7 })
	time.Sleep(200 * time.Millisecond) // nothing more may come
	msgs := got()
	var seqs []uint64
	var data []string
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
		data = append(data, string(m.Data))
	}
	if !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) || len(msgs) != 7 {
		t.Fatalf("seqs %v data %v", seqs, data)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v: want 1..7 once each", seqs)
		}
	}
	want := fmt.Sprint([]string{"1", "2", "3"})
	if fmt.Sprint(data[:3]) != want {
		t.Fatalf("data %v", data)
	}
	// the queued publishes 4, 5, 6 kept their order among themselves
	var queued []string
	for _, d := range data[3:] {
		if d != `"from-server"` {
			queued = append(queued, d)
		}
	}
	if fmt.Sprint(queued) != fmt.Sprint([]string{"4", "5", "6"}) {
		t.Fatalf("queued publishes arrived as %v", queued)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sleeps) < 2 || sleeps[0] != 100*time.Millisecond || sleeps[1] != 200*time.Millisecond {
		t.Fatalf("backoff schedule %v, want 100ms, 200ms, …", sleeps)
	}
}

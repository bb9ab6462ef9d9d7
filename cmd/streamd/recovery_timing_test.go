package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/state"
)

// BenchmarkRecoveryAfterKill: a data directory whose durable room holds
// 1,000,000 logged messages (RECOVERY_MESSAGES to change), the binary
// killed with SIGKILL while serving it, then restarted: reports the time
// from the restart to `listening`, and to the answer of a `join … since`
// that needs the room's log (the room recovers its seq lazily). One
// iteration: -benchtime 1x.
func BenchmarkRecoveryAfterKill(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RECOVERY_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "streamd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("auth: {anonymous: true}\nrooms: [{match: \"d.*\", durable: true}]\npipelines: []\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	// Fill the log the way the engine writes it: [encoding byte] + JSON.
	st, err := state.Open(state.Options{Dir: data, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	bt, err := st.NewBatcher()
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte("\x00{\"order\":12345,\"symbol\":\"ACME\",\"qty\":100,\"price\":101.25,\"note\":\"a 100-byte message....\"}")
	for i := 1; i <= n; i++ {
		if err := bt.Append("d.big", uint64(i), payload, nil); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 0 {
			bt.Flush()
		}
	}
	if err := bt.Sync(); err != nil {
		b.Fatal(err)
	}
	bt.Close()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	// Serve it, touch the room, and kill -9.
	url, kill := startBinaryB(b, bin, cfg, data)
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = c.WriteJSON(map[string]any{"type": "publish", "room": "d.big", "id": 1, "data": "x"})
	_, _, _ = c.ReadMessage() // welcome
	_, _, _ = c.ReadMessage() // ack: on disk
	c.Close()
	kill()

	b.ResetTimer()
	t0 := time.Now()
	url, kill = startBinaryB(b, bin, cfg, data)
	listening := time.Since(t0)
	c, _, err = websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = c.WriteJSON(map[string]any{"type": "join", "room": "d.big", "since": n - 100})
	var joined time.Duration
	for joined == 0 {
		_, msg, err := c.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if string(msg[:16]) == `{"type":"joined"` {
			joined = time.Since(t0)
		}
	}
	b.StopTimer()
	c.Close()
	kill()
	b.ReportMetric(float64(listening.Milliseconds()), "ms-to-listening")
	b.ReportMetric(float64(joined.Milliseconds()), "ms-to-first-join-answer")
}

func startBinaryB(b *testing.B, bin, cfg, data string) (string, func()) {
	b.Helper()
	return startBinary(b, bin, cfg, data)
}

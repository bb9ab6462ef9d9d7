package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestKill9LosesNoAcknowledgedMessage runs the real binary with a durable
// room, publishes while a consumer reads, kill -9s it at a random point,
// restarts it on the same data directory, and checks that every message
// it acknowledged is in the room's log, in order, with no gap, with the
// data that was sent. Three rounds, three kill points, one data directory.
func TestKill9LosesNoAcknowledgedMessage(t *testing.T) {
	bin := streamdBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("auth: {anonymous: true}\nrooms: [{match: \"d.*\", durable: true, history: 10}]\npipelines: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	acked := map[uint64]string{} // seq → data, over every round
	rng := rand.New(rand.NewPCG(42, 7))
	for round := 1; round <= 3; round++ {
		url, kill := startBinary(t, bin, cfg, data)
		// a consumer reads along
		cons, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = cons.WriteJSON(map[string]any{"type": "join", "room": "d.crash"})
		go func() {
			for {
				if _, _, err := cons.ReadMessage(); err != nil {
					return
				}
			}
		}()
		pub, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		sent := map[int]string{}
		done := make(chan struct{})
		go func() { // acks: id → seq
			defer close(done)
			for {
				_, b, err := pub.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Type string
					ID   int
					Seq  uint64
				}
				if json.Unmarshal(b, &m) == nil && m.Type == "ack" {
					mu.Lock()
					acked[m.Seq] = sent[m.ID]
					mu.Unlock()
				}
			}
		}()
		killAfter := time.Duration(100+rng.IntN(400)) * time.Millisecond
		deadline := time.Now().Add(killAfter)
		for i := 0; time.Now().Before(deadline); i++ {
			d := fmt.Sprintf(`{"round":%d,"i":%d}`, round, i)
			mu.Lock()
			sent[i] = d
			mu.Unlock()
			if err := pub.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"publish","room":"d.crash","id":%d,"data":%s}`, i, d))); err != nil {
				break
			}
			if i%64 == 63 {
				time.Sleep(time.Millisecond)
			}
		}
		kill() // SIGKILL, mid-stream
		<-done
		pub.Close()
		cons.Close()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		t.Logf("round %d: killed after %v, %d messages acknowledged so far", round, killAfter, n)
	}
	if len(acked) < 100 {
		t.Fatalf("only %d messages were acknowledged: the test did not exercise much", len(acked))
	}
	// Restart once more and read the whole log back.
	url, kill := startBinary(t, bin, cfg, data)
	defer kill()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteJSON(map[string]any{"type": "join", "room": "d.crash", "since": 0})
	var last uint64
	var next uint64 = 1
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading the replay at seq %d of %d: %v", next, last, err)
		}
		var m struct {
			Type      string
			Seq       uint64
			Recovered *bool
			Data      json.RawMessage
		}
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "joined":
			last = m.Seq
			if m.Recovered == nil || !*m.Recovered {
				t.Fatalf("joined %s: want recovered true", b)
			}
		case "message":
			if m.Seq != next {
				t.Fatalf("replay gap: got seq %d, want %d", m.Seq, next)
			}
			if want, ok := acked[m.Seq]; ok && string(m.Data) != want {
				t.Fatalf("seq %d: data %s, acknowledged as %s", m.Seq, m.Data, want)
			}
			next++
		}
		if last > 0 && next > last {
			break
		}
	}
	for seq := range acked {
		if seq > last {
			t.Fatalf("seq %d was acknowledged but the log ends at %d", seq, last)
		}
	}
	t.Logf("%d acknowledged messages, log of %d, replayed in order without a gap", len(acked), last)
}

// startBinary starts streamd serve on a free port with cfg and data, and
// returns its WebSocket URL and a function that SIGKILLs it and waits.
func startBinary(t testing.TB, bin, cfg, data string) (string, func()) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "", "--data", data, "--log-level", "info")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	url := ""
	var logs []string
	for sc.Scan() {
		l := sc.Text()
		logs = append(logs, l)
		if ws, _, ok := parseListening(l); ok {
			url = ws
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if url == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no listening line:\n%s", strings.Join(logs, "\n"))
	}
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	return url, kill
}

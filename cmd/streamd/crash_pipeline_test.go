package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// streamdBinary builds the binary once per test run.
func streamdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "streamd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "streamd")
		if out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// crashPipelineConfig: a checkpointing pipeline counts events per key in
// 150 ms processing-time windows and publishes each window's count into
// the durable room d.counts.
const crashPipelineConfig = `
auth: {anonymous: true}
rooms: [{match: "d.*", durable: true, history: 10}]
pipelines:
  - name: counts
    checkpoint: 10ms
    input: {stream: ev}
    nodes:
      - {name: agg, op: aggregate, key: "data.k", fn: count, window: {tumbling: 150ms}}
      - {name: out, op: room, room: d.counts}
`

// crashProducer is one exactly-once producer: it remembers what it sent
// and what was acknowledged, across restarts.
type crashProducer struct {
	name  string
	mu    sync.Mutex
	next  int          // the next pseq to send
	acked map[int]bool // pseq → acknowledged (duplicate or not)
}

func (p *crashProducer) msg(pseq int) []byte {
	return fmt.Appendf(nil, `{"type":"event","stream":"ev","id":"%s:%d","producer":%q,"pseq":%d,"data":{"k":%q}}`,
		p.name, pseq, p.name, pseq, string(rune('a'+pseq%4)))
}

// run connects, resends every unacknowledged event in order, then sends
// new ones until stop closes (or the connection breaks).
func (p *crashProducer) run(url string, stop <-chan struct{}, sendNew bool) error {
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m struct{ Type, ID string }
			if json.Unmarshal(b, &m) == nil && m.Type == "ack" {
				var pseq int
				if _, err := fmt.Sscanf(m.ID[len(p.name)+1:], "%d", &pseq); err == nil {
					p.mu.Lock()
					p.acked[pseq] = true
					p.mu.Unlock()
				}
			}
		}
	}()
	p.mu.Lock()
	var resend []int
	for i := 1; i < p.next; i++ {
		if !p.acked[i] {
			resend = append(resend, i)
		}
	}
	p.mu.Unlock()
	for _, pseq := range resend {
		if err := c.WriteMessage(websocket.TextMessage, p.msg(pseq)); err != nil {
			return nil
		}
	}
	for i := 0; sendNew; i++ {
		select {
		case <-stop:
			sendNew = false
			continue
		default:
		}
		p.mu.Lock()
		pseq := p.next
		p.next++
		p.mu.Unlock()
		if err := c.WriteMessage(websocket.TextMessage, p.msg(pseq)); err != nil {
			break
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond)
		}
	}
	if !sendNew {
		select {
		case <-stop:
		case <-readDone:
		}
	}
	_ = c.Close()
	<-readDone
	return nil
}

func (p *crashProducer) unacked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := 1; i < p.next; i++ {
		if !p.acked[i] {
			n++
		}
	}
	return n
}

// TestKill9PipelineCountsEachInputOnce runs the real binary with a
// checkpointing pipeline, has four exactly-once producers send events
// (resending what was not acknowledged after each restart), kill -9s it
// at random points, and checks that the window counts the pipeline
// committed into its durable room add up to the number of distinct events
// sent: nothing lost, nothing counted twice, no window published twice.
func TestKill9PipelineCountsEachInputOnce(t *testing.T) {
	bin := streamdBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte(crashPipelineConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	var prods []*crashProducer
	for i := range 4 {
		prods = append(prods, &crashProducer{name: fmt.Sprintf("p%d", i), next: 1, acked: map[int]bool{}})
	}
	// Kill points differ on every run; the seed is logged, and
	// STREAMD_CRASH_SEED=N replays one.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("STREAMD_CRASH_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatalf("STREAMD_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("kill points from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for round := 1; round <= 4; round++ {
		url, kill := startBinary(t, bin, cfg, data)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, p := range prods {
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.run(url, stop, true) }()
		}
		killAfter := time.Duration(150+rng.IntN(500)) * time.Millisecond
		time.Sleep(killAfter)
		kill() // SIGKILL, mid-stream
		close(stop)
		wg.Wait()
		sent, unacked := 0, 0
		for _, p := range prods {
			sent += p.next - 1
			unacked += p.unacked()
		}
		t.Logf("round %d: killed after %v; %d events sent so far, %d not acknowledged", round, killAfter, sent, unacked)
	}
	// The last start: resend until everything is acknowledged.
	url, kill := startBinary(t, bin, cfg, data)
	defer kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, p := range prods {
			left += p.unacked()
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still not acknowledged", left)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, p := range prods {
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.run(url, stop, false) }()
		}
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
	}
	total := 0
	for _, p := range prods {
		total += p.next - 1
	}
	if total < 1000 {
		t.Fatalf("only %d events were sent: the test did not exercise much", total)
	}
	// Every window closes within 150 ms, its checkpoint within 10 ms more.
	var sum int
	var windows []string
	waitUntil := time.Now().Add(10 * time.Second)
	for {
		sum, windows = readCounts(t, url)
		if sum >= total || time.Now().After(waitUntil) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, w := range windows {
		if seen[w] {
			t.Fatalf("window %s was published twice", w)
		}
		seen[w] = true
	}
	if sum != total {
		t.Fatalf("the committed window counts add up to %d, but %d distinct events were sent", sum, total)
	}
	t.Logf("%d distinct events from 4 producers over 4 kills: %d windows committed, counting each event once", total, len(windows))
}

// readCounts replays d.counts and returns the sum of the window counts
// and the windows' (key, start) in seq order.
func readCounts(t *testing.T, url string) (int, []string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteJSON(map[string]any{"type": "join", "room": "d.counts", "since": 0})
	sum, last, got := 0, uint64(0), uint64(0)
	var windows []string
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading d.counts: %v", err)
		}
		var m struct {
			Type string
			Seq  uint64
			Data struct {
				Key   string
				Start int64
				Count float64
			}
		}
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "joined":
			last = m.Seq
		case "message":
			got = m.Seq
			sum += int(m.Data.Count)
			windows = append(windows, fmt.Sprintf("%s@%d", m.Data.Key, m.Data.Start))
		}
		if m.Type == "joined" && last == 0 {
			return 0, nil
		}
		if last > 0 && got >= last {
			break
		}
	}
	sort.Strings(windows)
	return sum, windows
}

package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkPresenceJoinStorm: CLIENTS clients (default 10,000; env
// PRESENCE_CLIENTS) connect to a streamd subprocess (its own process, so
// each side stays under the machine's open-file limit), then all join one
// presence room at once. It reports the time from the joins' release until
// every client has seen a presence notice that counts all of them (its view
// of the room is complete), the notice frames the clients received, and
// the time to connect. One iteration per run: use -benchtime 1x.
// PRESENCE_ABOVE and PRESENCE_INTERVAL set presence_coalesce_above and
// presence_coalesce_interval (defaults 1000 and 1s).
func BenchmarkPresenceJoinStorm(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("PRESENCE_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "streamd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/streamd").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "c.yaml")
	conf := "auth: {anonymous: true}\nrooms: [{match: \"p.*\", presence: true}]\nmax_connections: 20000\n"
	if v := os.Getenv("PRESENCE_ABOVE"); v != "" {
		conf += "presence_coalesce_above: " + v + "\n"
	}
	if v := os.Getenv("PRESENCE_INTERVAL"); v != "" {
		conf += "presence_coalesce_interval: " + v + "\n"
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "", "--in-memory", "--log-level", "info")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		url := ""
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "msg=listening") {
				for _, f := range strings.Fields(l) {
					if v, ok := strings.CutPrefix(f, "ws="); ok {
						url = v
					}
				}
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		if url == "" {
			b.Fatal("no listening line")
		}
		t0 := time.Now()
		conns := make([]*websocket.Conn, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		var dialErr atomic.Value
		for k := 0; k < n; k++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(k int) {
				defer wg.Done()
				defer func() { <-sem }()
				d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256}
				c, _, err := d.Dial(url, nil)
				if err != nil {
					dialErr.Store(err)
					return
				}
				conns[k] = c
			}(k)
		}
		wg.Wait()
		if err, _ := dialErr.Load().(error); err != nil {
			b.Fatalf("dial: %v", err)
		}
		connectTime := time.Since(t0)
		want := []byte(`"members":` + strconv.Itoa(n) + `,`)
		var frames, batches atomic.Int64
		var lastSeen atomic.Int64
		release := make(chan struct{})
		var done sync.WaitGroup
		var start time.Time
		for k, c := range conns {
			done.Add(1)
			go func(k int, c *websocket.Conn) {
				defer done.Done()
				<-release
				if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"p.storm","user_id":"u`+strconv.Itoa(k)+`"}`)); err != nil {
					b.Error(err)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
				for {
					_, msg, err := c.ReadMessage()
					if err != nil {
						b.Error(err)
						return
					}
					if bytes.Contains(msg, []byte(`"user_joined"`)) || bytes.Contains(msg, []byte(`"presence_batch"`)) {
						frames.Add(1)
						if bytes.Contains(msg, []byte(`"presence_batch"`)) {
							batches.Add(1)
						}
						if bytes.Contains(msg, want) {
							t := time.Since(start).Nanoseconds()
							for {
								old := lastSeen.Load()
								if t <= old || lastSeen.CompareAndSwap(old, t) {
									break
								}
							}
							return
						}
					}
				}
			}(k, c)
		}
		time.Sleep(200 * time.Millisecond) // every reader waits at the barrier
		b.ResetTimer()
		start = time.Now()
		close(release)
		done.Wait()
		b.StopTimer()
		b.ReportMetric(float64(lastSeen.Load())/1e6, "ms-until-all-consistent")
		b.ReportMetric(float64(frames.Load()), "notice-frames")
		b.ReportMetric(float64(batches.Load()), "batch-frames")
		b.ReportMetric(connectTime.Seconds(), "s-to-connect")
		for _, c := range conns {
			c.Close()
		}
		cancel()
		_ = cmd.Wait()
	}
}

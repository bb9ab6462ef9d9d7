package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// logWatcher reads a serve process's log lines, finds the `listening`
// line and keeps draining the rest so that the logger never blocks.
type logWatcher struct {
	listening chan [2]string // ws URL, admin URL
	lines     chan string    // every line, for failure messages
	done      chan struct{}  // closed at EOF
}

func watchLog(r io.Reader) *logWatcher {
	w := &logWatcher{listening: make(chan [2]string, 1), lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			select {
			case w.lines <- line:
			default:
			}
			if ws, admin, ok := parseListening(line); ok {
				w.listening <- [2]string{ws, admin}
			}
		}
	}()
	return w
}

// parseListening extracts ws= and admin= from a text-format `listening`
// log line.
func parseListening(line string) (ws, admin string, ok bool) {
	if !strings.Contains(line, "msg=listening ") {
		return "", "", false
	}
	for _, f := range strings.Fields(line) {
		if v, found := strings.CutPrefix(f, "ws="); found {
			ws = v
		}
		if v, found := strings.CutPrefix(f, "admin="); found {
			admin = v
		}
	}
	return ws, admin, ws != "" && admin != ""
}

// logSoFar returns the lines read so far.
func (w *logWatcher) logSoFar() string {
	var b strings.Builder
	for {
		select {
		case l := <-w.lines:
			b.WriteString(l + "\n")
		default:
			return b.String()
		}
	}
}

func (w *logWatcher) waitListening(t *testing.T) (ws, admin string) {
	t.Helper()
	select {
	case a := <-w.listening:
		return a[0], a[1]
	case <-w.done:
		t.Fatalf("serve exited before listening:\n%s", w.logSoFar())
	case <-time.After(20 * time.Second):
		t.Fatalf("no listening line after 20s:\n%s", w.logSoFar())
	}
	return "", ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// TestServeInProcess runs serve inside the test (so -race sees it), checks
// the admin endpoints and that cancelling its context shuts it down with
// status 0.
func TestServeInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, codec := serveInProcess(ctx, mapEnv(map[string]string{envMode: "inline"}),
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--in-memory")
	ws, admin := w.waitListening(t)
	if !strings.HasPrefix(ws, "ws://127.0.0.1:") || !strings.HasSuffix(ws, "/ws") {
		t.Errorf("ws = %q", ws)
	}
	if code, body := httpGet(t, admin+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := httpGet(t, admin+"/stats")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Errorf("/stats: %d %q (%v)", code, body, err)
	} else if _, ok := st["connections"]; !ok {
		t.Errorf("/stats has no Connections: %q", body)
	}
	if code, body := httpGet(t, admin+"/metrics"); code != 200 ||
		!strings.Contains(body, "# HELP streamd_connections ") ||
		!strings.Contains(body, "# TYPE streamd_messages_published_total counter") ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, body := httpGet(t, admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	if code, _ := httpGet(t, admin+"/debug/pprof/cmdline"); code != 200 {
		t.Errorf("/debug/pprof/cmdline: %d", code)
	}
	if code, _ := httpGet(t, admin+"/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
	stopServe(t, cancel, codec, w)
	<-w.done
}

// serveInProcess runs `serve args…` inside the test (so -race sees it)
// until ctx ends, with env as its environment. It returns the watcher of
// its log and the channel its exit status comes on.
func serveInProcess(ctx context.Context, env func(string) (string, bool), args ...string) (*logWatcher, <-chan int) {
	pr, pw := io.Pipe()
	w := watchLog(pr)
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, append([]string{"serve"}, args...), io.Discard, pw, env)
		pw.Close()
	}()
	return w, codec
}

// stopServe cancels a serveInProcess's context and checks that it
// returns status 0 within 10 s.
func stopServe(t *testing.T, cancel context.CancelFunc, codec <-chan int, w *logWatcher) {
	t.Helper()
	cancel()
	select {
	case code := <-codec:
		if code != 0 {
			t.Errorf("serve exited %d:\n%s", code, w.logSoFar())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return 10s after its context ended")
	}
}

// TestEndToEnd builds the binary and drives it the way outside tests do
// (DESIGN.md, "Command-line contract"): start on free ports, read the
// `listening` line, check the admin server, speak the wire protocol, then
// SIGTERM and expect close 1001 and exit 0 within 5 s.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	bin := filepath.Join(t.TempDir(), "streamd")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--in-memory")
	cmd.Env = append(os.Environ(), "STREAMD_LISTEN=", "STREAMD_ADMIN=127.0.0.1:1") // flags win
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	w := watchLog(stderr)
	go func() {
		<-w.done // StderrPipe: Wait only after the reads are done
		exited <- cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	wsURL, admin := w.waitListening(t)

	if code, body := httpGet(t, admin+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, admin+"/metrics"); code != 200 || !strings.Contains(body, "streamd_connections") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer conn.Close()
	read := func() map[string]any {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v\nserver log:\n%s", err, w.logSoFar())
		}
		return m
	}
	send := func(v string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if m := read(); m["type"] != "welcome" || m["session"] == nil || m["heartbeat_ms"] == nil {
		t.Fatalf("first frame = %v, want a welcome", m)
	}
	send(`{"type":"join","room":"chat.lobby","id":1}`)
	if m := read(); m["type"] != "joined" || m["room"] != "chat.lobby" || m["id"] != 1.0 {
		t.Fatalf("join answer = %v", m)
	}
	// chat.* has presence on in the default config: our own arrival
	if m := read(); m["type"] != "user_joined" || m["members"] != 1.0 {
		t.Fatalf("got %v, want our user_joined", m)
	}
	send(`{"type":"publish","room":"chat.lobby","data":{"text":"hi"}}`)
	m := read() // no "id" on the publish: no ack, just the message
	if m["type"] != "message" || m["room"] != "chat.lobby" || m["seq"] != 1.0 {
		t.Fatalf("got %v, want the message back", m)
	}
	if data, _ := m["data"].(map[string]any); data["text"] != "hi" {
		t.Fatalf("data = %v", m["data"])
	}
	if code, body := httpGet(t, admin+"/metrics"); code != 200 || !strings.Contains(body, "\nstreamd_connections 1\n") {
		t.Errorf("/metrics with one client: %d\n%s", code, body)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var closeErr *websocket.CloseError
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue // anything still in flight before the close
		}
		if !errors.As(err, &closeErr) {
			t.Fatalf("read after SIGTERM: %v, want a close frame", err)
		}
		break
	}
	if closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("close code %d (%q), want 1001", closeErr.Code, closeErr.Text)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("streamd exited with %v after SIGTERM:\n%s", err, w.logSoFar())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %v, want ≤ 5s", d)
		}
	case <-time.After(5*time.Second - time.Since(start)):
		t.Fatalf("streamd still running 5s after SIGTERM:\n%s", w.logSoFar())
	}
}

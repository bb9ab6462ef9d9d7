package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func httpPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const reloadV1 = `
auth: {anonymous: true}
pipelines:
  - name: tag
    input: {stream: s}
    nodes:
      - {name: tag, op: map, set: {v: "1"}}
    output: {room: out}
`

// TestIngestReloadAndSighup runs serve with a config file: POST /ingest
// feeds a pipeline, POST /reload and SIGHUP swap in an edited file
// without dropping the WebSocket client, and a broken file is refused.
func TestIngestReloadAndSighup(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(reloadV1), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, codec := serveInProcess(ctx, mapEnv(nil), "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--in-memory")
	ws, admin := w.waitListening(t)
	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v\n%s", err, w.logSoFar())
		}
		return string(b)
	}
	read() // welcome
	_ = c.WriteJSON(map[string]any{"type": "join", "room": "out"})
	read() // joined
	expect := func(body, want string) {
		t.Helper()
		if code, b := httpPost(t, admin+"/ingest?stream=s", body); code != 200 || !strings.Contains(b, `"ingested":1`) {
			t.Fatalf("/ingest: %d %s", code, b)
		}
		if m := read(); !strings.Contains(m, want) {
			t.Fatalf("got %s, want %s", m, want)
		}
	}
	expect(`{"n":1}`, `"data":{"n":1,"v":1}`)

	if err := os.WriteFile(cfg, []byte(strings.Replace(reloadV1, `v: "1"`, `v: "2"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, b := httpPost(t, admin+"/reload", ""); code != 200 {
		t.Fatalf("/reload: %d %s", code, b)
	}
	expect(`{"n":2}`, `"data":{"n":2,"v":2}`)

	if err := os.WriteFile(cfg, []byte(strings.Replace(reloadV1, `v: "1"`, `v: "3"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// logSoFar consumes lines: keep what it returns
	log := ""
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(log, "reloaded pipelines") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
		log += w.logSoFar()
	}
	expect(`{"n":3}`, `"data":{"n":3,"v":3}`)

	if err := os.WriteFile(cfg, []byte("pipelines: [{name: tag, input: {stream: s}, nodes: [{name: tag, op: nope}], output: {room: out}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, b := httpPost(t, admin+"/reload", ""); code != 422 || !strings.Contains(b, `unknown op "nope"`) || !strings.Contains(b, "c.yaml:1:") {
		t.Fatalf("/reload of a broken file: %d %s", code, b)
	}
	expect(`{"n":4}`, `"data":{"n":4,"v":3}`) // the running pipeline stayed

	if code, b := httpPost(t, admin+"/ingest?stream=nope", `1`); code != 404 {
		t.Fatalf("/ingest to an unknown stream: %d %s", code, b)
	}
	if code, b := httpPost(t, admin+"/ingest?stream=s", "{\"n\":5}\nnot json\n"); code != 400 || !strings.Contains(b, "line 2") {
		t.Fatalf("/ingest with a bad line: %d %s", code, b)
	}
	stopServe(t, cancel, codec, w)
}

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// nodePayload is what client `name` of node/client.mjs publishes in encoding
// kind ("text" or "binary"); keep it in step with payload() there.
func nodePayload(name, kind string) map[string]any {
	n := 1
	if kind == "binary" {
		n = 2
	}
	return map[string]any{
		"from": name,
		"kind": kind,
		"text": "héllo from " + name + " ✓ 🚀",
		"n":    n,
		"neg":  -7,
		"big":  int64(1) << 40,
		"f":    1.5,
		"ok":   true,
		"nil":  nil,
		"list": []any{1, "two", []any{3}, map[string]any{"four": 4}},
		"pad":  strings.Repeat("streamd ", 256),
	}
}

// nodeGoData is what the Go side publishes once client.mjs prints READY;
// keep it in step with GO_DATA there.
func nodeGoData() map[string]any {
	return map[string]any{"from": "go", "text": "hello from Go ✓", "n": 42, "pad": strings.Repeat("go ", 100)}
}

// payloadKey names a message by its data's "from" and "kind" fields.
func payloadKey(data any) string {
	m, ok := data.(map[string]any)
	if !ok {
		return fmt.Sprintf("%v", data)
	}
	kind, _ := m["kind"].(string)
	return fmt.Sprintf("%v/%s", m["from"], kind)
}

// lockedBuffer collects a process's output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNodeWS: two clients on Node's ws package (node/client.mjs), one with
// permessage-deflate and one without, and a Go client on coder/websocket
// share a room; every text and msgpack message reaches all of them.
func TestNodeWS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping: `node` is not on PATH (install Node.js ≥ 18 and run `make test-deps` to run this test)")
	}
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"ws", "@msgpack/msgpack"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("e2e/node/node_modules/%s is missing: run `make test-deps` (scripts/test-deps.sh runs npm ci in e2e/node): %v", pkg, err)
		}
	}
	modes(t, func(t *testing.T, mode string) {
		ctx := deadline(t)
		_, url := startEngine(t, mode)
		room := "e2e.node." + mode

		// The Go client asks for deflate without context takeover (the Node
		// deflate client uses context takeover: both ways get covered).
		g := dialGo(ctx, t, url, websocket.CompressionNoContextTakeover)
		g.join(ctx, room)

		var stdout, stderr lockedBuffer
		cmd := exec.CommandContext(ctx, node, "client.mjs", url, room, "with-go")
		cmd.Dir = dir
		cmd.Stderr = &stderr
		cmd.WaitDelay = 2 * time.Second
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatalf("start node: %v", err)
		}
		ready := make(chan struct{})
		scanned := make(chan struct{})
		go func() {
			defer close(scanned)
			sc := bufio.NewScanner(pipe)
			once := sync.Once{}
			for sc.Scan() {
				fmt.Fprintln(&stdout, sc.Text())
				if sc.Text() == "READY" {
					once.Do(func() { close(ready) })
				}
			}
		}()
		exited := make(chan error, 1)
		go func() {
			<-scanned // Wait closes the pipe: read it all first
			exited <- cmd.Wait()
		}()
		report := func() string {
			return fmt.Sprintf("node stdout:\n%s\nnode stderr:\n%s", stdout.String(), stderr.String())
		}

		select {
		case <-ready:
		case err := <-exited:
			t.Fatalf("node exited before READY: %v\n%s", err, report())
		case <-ctx.Done():
			t.Fatalf("no READY from node: %v\n%s", ctx.Err(), report())
		}
		g.send(ctx, map[string]any{"type": "publish", "room": room, "id": "go-pub", "data": nodeGoData()})

		want := map[string]any{"go/": jsonValue(t, nodeGoData())}
		for _, name := range []string{"deflate", "plain"} {
			for _, kind := range []string{"text", "binary"} {
				want[name+"/"+kind] = jsonValue(t, nodePayload(name, kind))
			}
		}
		var msgs []frame
		acked := false
		for len(msgs) < len(want) || !acked {
			f := g.next(ctx)
			switch f.Msg["type"] {
			case "message":
				msgs = append(msgs, f)
			case "ack":
				if f.Msg["id"] != "go-pub" {
					t.Fatalf("go client: ack %s, want id go-pub", f)
				}
				acked = true
			default:
				t.Fatalf("go client: unexpected frame %s", f)
			}
		}
		checkMessages(t, "go client", room, msgs, want, payloadKey)

		if err := <-exited; err != nil {
			t.Fatalf("node client.mjs failed: %v\n%s", err, report())
		}
		t.Logf("node client.mjs ran %v:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
		if !strings.Contains(stdout.String(), "\nOK\n") {
			t.Fatalf("node exited 0 without OK\n%s", report())
		}
		g.close()
	})
}

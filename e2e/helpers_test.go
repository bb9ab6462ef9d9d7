package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/coder/websocket"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// testTimeout bounds each end-to-end test as a whole.
const testTimeout = 30 * time.Second

// modes runs f once per engine execution mode.
func modes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range []string{engine.ModeInline, engine.ModeRings} {
		t.Run("mode="+mode, func(t *testing.T) { f(t, mode) })
	}
}

// startEngine runs an engine on a free loopback port for the test and
// returns its WebSocket URL.
func startEngine(t *testing.T, mode string) (*engine.Engine, string) {
	t.Helper()
	e := enginetest.Start(t, engine.Config{Mode: mode, Loops: 2, Workers: 2})
	return e, enginetest.URL(e)
}

// frame is one decoded server frame as the Go client saw it.
type frame struct {
	Binary bool
	Raw    []byte
	Msg    map[string]any
}

// goClient is a JSON client on github.com/coder/websocket. A goroutine
// reads every frame into frames until the connection ends.
type goClient struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan frame
	done   chan error // the reader's end
}

func dialGo(ctx context.Context, t *testing.T, url string, mode websocket.CompressionMode) *goClient {
	t.Helper()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: mode})
	if err != nil {
		t.Fatalf("go client: dial %s: %v", url, err)
	}
	if mode != websocket.CompressionDisabled {
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !bytes.Contains([]byte(ext), []byte("permessage-deflate")) {
			t.Fatalf("go client: asked for permessage-deflate, server answered extensions %q", ext)
		}
	}
	ws.SetReadLimit(1 << 20)
	c := &goClient{t: t, ws: ws, frames: make(chan frame, 64), done: make(chan error, 1)}
	go c.readLoop()
	t.Cleanup(func() { _ = ws.CloseNow() })
	if w := c.next(ctx); w.Msg["type"] != "welcome" || w.Binary {
		t.Fatalf("go client: first frame %s, want a JSON welcome", w)
	}
	return c
}

func (c *goClient) readLoop() {
	defer close(c.frames)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.done <- err
			return
		}
		f := frame{Binary: typ == websocket.MessageBinary, Raw: b}
		if f.Binary {
			c.done <- fmt.Errorf("binary frame %x to a client that only sent text", b)
			return
		}
		if err := json.Unmarshal(b, &f.Msg); err != nil {
			c.done <- fmt.Errorf("bad JSON from the server %q: %v", b, err)
			return
		}
		c.frames <- f
	}
}

func (f frame) String() string {
	kind := "text"
	if f.Binary {
		kind = "binary"
	}
	return fmt.Sprintf("%s %s", kind, f.Raw)
}

// next returns the next frame, failing the test at ctx's end or when the
// connection ends.
func (c *goClient) next(ctx context.Context) frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("go client: connection ended: %v", <-c.done)
		}
		if f.Msg["type"] == "error" {
			c.t.Fatalf("go client: server error: %s", f)
		}
		return f
	case <-ctx.Done():
		c.t.Fatalf("go client: no frame: %v", ctx.Err())
	}
	panic("unreachable")
}

// expect skips frames of other types than typ (messages included) and
// returns the first of type typ.
func (c *goClient) expect(ctx context.Context, typ string) frame {
	c.t.Helper()
	for {
		if f := c.next(ctx); f.Msg["type"] == typ {
			return f
		}
	}
}

func (c *goClient) send(ctx context.Context, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("go client: write: %v", err)
	}
}

func (c *goClient) join(ctx context.Context, room string) {
	c.t.Helper()
	c.send(ctx, map[string]any{"type": "join", "room": room, "id": "go-join"})
	j := c.expect(ctx, "joined")
	if j.Msg["room"] != room || j.Msg["id"] != "go-join" {
		c.t.Fatalf("go client: joined = %s", j)
	}
}

// close ends the connection with a normal closure and a close handshake.
func (c *goClient) close() {
	c.t.Helper()
	if err := c.ws.Close(websocket.StatusNormalClosure, "done"); err != nil {
		c.t.Errorf("go client: close handshake: %v", err)
	}
}

// jsonValue normalizes v into what encoding/json decodes (maps of any,
// float64 numbers) so it compares with reflect.DeepEqual.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkMessages checks that msgs carry exactly the data in want (keyed by
// keyOf), for room, with seq 1, 2, … in order, and returns each key's seq.
func checkMessages(t *testing.T, who, room string, msgs []frame, want map[string]any, keyOf func(any) string) map[string]uint64 {
	t.Helper()
	if len(msgs) != len(want) {
		t.Fatalf("%s: got %d messages, want %d: %v", who, len(msgs), len(want), msgs)
	}
	seqs := make(map[string]uint64)
	for i, f := range msgs {
		m := f.Msg
		if m["room"] != room {
			t.Errorf("%s: message %s: room %v, want %q", who, f, m["room"], room)
		}
		seq, ok := m["seq"].(float64)
		if !ok || uint64(seq) != uint64(i+1) {
			t.Errorf("%s: message %d has seq %v, want %d", who, i, m["seq"], i+1)
		}
		k := keyOf(m["data"])
		w, ok := want[k]
		if !ok {
			t.Errorf("%s: unexpected message %s", who, f)
			continue
		}
		if _, dup := seqs[k]; dup {
			t.Errorf("%s: message %q delivered twice", who, k)
		}
		seqs[k] = uint64(seq)
		if got := m["data"]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s: message %q data\n got %#v\nwant %#v", who, k, got, w)
		}
	}
	return seqs
}

// deadline returns a context that ends after testTimeout.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"streamd/client/js"
	"streamd/engine"
	"streamd/engine/enginetest"
	"streamd/internal/chromiumtest"
)

// clientPage mirrors window.t in testdata/client.html.
type clientPage struct {
	State      string            `json:"state"`
	States     [][2]any          `json:"states"`
	Reconnects []pageReconnect   `json:"reconnects"`
	Seqs       []uint64          `json:"seqs"`
	Data       []json.RawMessage `json:"data"`
	Gaps       []map[string]any  `json:"gaps"`
	Errors     []string          `json:"errors"`
	Published  int               `json:"published"`
	Failed     []string          `json:"failed"`
	Joined     bool              `json:"joined"`
	// DeadSilence is how long the page had received nothing when it
	// declared the connection dead (ms).
	DeadSilence int64 `json:"deadSilence"`
	Done        bool  `json:"done"`
}

type pageReconnect struct {
	Attempt int   `json:"attempt"`
	Delay   int64 `json:"delay"`
	At      int64 `json:"at"`
}

// needChromium skips t when Chromium is missing, or fails it when CI is
// set.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("skipping: %s is missing (run `make test-deps`, or apt-get install chromium); with CI set this fails", chromiumPath)
		}
		t.Fatalf("%s is missing and CI is set: `make test-deps` (scripts/test-deps.sh) must install Debian's chromium: %v", chromiumPath, err)
	}
}

// browser starts headless Chromium for t and returns a context to run
// chromedp actions in, and a function that reports Chromium's logs.
func browser(t *testing.T) (context.Context, func() string) {
	t.Helper()
	needChromium(t)
	ctx := deadline(t)
	logs := &chromiumtest.Log{}
	profile, err := os.MkdirTemp("", "e2e-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	allocCtx, cancelAlloc := chromiumtest.NewAllocator(ctx, chromiumPath, profile, logs)
	t.Cleanup(cancelAlloc) // runs before the profile's removal: waits for Chromium's exit
	b, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(logs.Printf), chromedp.WithErrorf(logs.Printf))
	t.Cleanup(cancel)
	return b, logs.String
}

// pageServer serves testdata and the browser client at /client.js.
func pageServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/client.js", js.Handler())
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func readPage(t *testing.T, b context.Context, logs func() string) clientPage {
	t.Helper()
	p, err := chromedp.Run(b, chromedp.Evaluate[clientPage](`window.t || {}`))
	if err != nil {
		t.Fatalf("chromium: read window.t: %v\n%s", err, logs())
	}
	return p
}

func pollPage(t *testing.T, b context.Context, logs func() string, what, cond string, within time.Duration) {
	t.Helper()
	_, err := chromedp.Run(b, chromedp.Poll[bool]("window.t && ("+cond+")",
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(within)))
	if err != nil {
		t.Fatalf("chromium: waiting for %s: %v\npage: %+v\n%s", what, err, readPage(t, b, logs), logs())
	}
}

// TestBrowserClientSurvivesRestart: the engine stops and starts again
// mid-stream; streamd.js in Chromium reconnects on its backoff schedule,
// re-joins the durable room and recovers every message it missed, each
// once and in order, and its publishes made while the engine was down
// arrive once, in order.
func TestBrowserClientSurvivesRestart(t *testing.T) {
	b, logs := browser(t)
	pages := pageServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := engine.Config{Listen: addr, Data: t.TempDir(), Auth: engine.AuthConfig{Anonymous: true},
		Rooms: []engine.RoomPolicy{{Match: "d.*", Durable: true, History: -1}}}
	start := func() *engine.Engine {
		e, err := engine.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	var cur atomic.Pointer[engine.Engine]
	cur.Store(start())
	t.Cleanup(func() {
		if e := cur.Load(); e != nil {
			_ = e.Close(context.Background())
		}
	})

	const n = 60
	page := pages.URL + "/client.html?" + url.Values{"ws": {"ws://" + addr + "/ws"}, "room": {"d.feed"}, "n": {fmt.Sprint(n)}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigate: %v\n%s", err, logs())
	}
	pollPage(t, b, logs, "the join", "window.t.joined", 15*time.Second)

	// Go publishes too, every 10 ms, while an engine is up.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if e := cur.Load(); e != nil {
				_, _ = e.Publish("d.feed", fmt.Appendf(nil, `{"from":"go","n":%d}`, i))
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	e1 := cur.Swap(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := e1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(time.Second) // down: the page keeps publishing into its queue
	cur.Store(start())
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	pollPage(t, b, logs, "every publish", "window.t.done", 20*time.Second)

	// The room as the engine holds it.
	last, log := readRoom(t, "ws://"+addr+"/ws", "d.feed")
	p := readPage(t, b, logs)
	pollPage(t, b, logs, "every message", fmt.Sprintf("window.t.seqs.length >= %d", last), 10*time.Second)
	p = readPage(t, b, logs)
	if len(p.Failed) > 0 || p.Published != n {
		t.Errorf("page publishes: %d acknowledged, failed %v", p.Published, p.Failed)
	}
	for i, seq := range p.Seqs {
		if seq != uint64(i+1) {
			t.Fatalf("page saw seqs %v…: want 1, 2, … %d without a gap or a repeat", p.Seqs[:min(len(p.Seqs), i+3)], last)
		}
	}
	if uint64(len(p.Seqs)) != last {
		t.Errorf("page saw %d messages, the room has %d", len(p.Seqs), last)
	}
	if len(p.Gaps) > 0 {
		t.Errorf("gaps reported: %v", p.Gaps)
	}
	// The page's publishes: each once, in order.
	next := 0
	for _, m := range log {
		var d struct {
			From string
			N    int
		}
		_ = json.Unmarshal(m, &d)
		if d.From != "page" {
			continue
		}
		if d.N != next {
			t.Fatalf("the room holds the page's publish %d where %d was due", d.N, next)
		}
		next++
	}
	if next != n {
		t.Errorf("the room holds %d of the page's %d publishes", next, n)
	}
	// The backoff schedule: 200, 400, 800 ms (jitter 0); each attempt
	// waited at least its delay.
	if len(p.Reconnects) < 2 {
		t.Fatalf("reconnects: %+v", p.Reconnects)
	}
	for i, r := range p.Reconnects {
		if want := int64(200) << i; r.Attempt != i+1 || r.Delay != min(want, 1600) {
			t.Errorf("reconnect %d: %+v, want attempt %d after %d ms", i, r, i+1, min(want, 1600))
		}
		if i > 0 {
			gap := r.At - p.Reconnects[i-1].At
			if prev := p.Reconnects[i-1].Delay; gap < prev-15 || gap > prev+1500 {
				t.Errorf("attempt %d came %d ms after the one before, whose delay was %d ms", i+1, gap, prev)
			}
		}
	}
	t.Logf("engine down 1 s: %d reconnect attempts %+v; page saw %d messages (seq 1..%d), its %d publishes once each",
		len(p.Reconnects), p.Reconnects, len(p.Seqs), last, n)
}

// readRoom replays a room from its start with a Go client and returns
// its last seq and the messages' data.
func readRoom(t *testing.T, wsURL, room string) (uint64, []json.RawMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","room":%q,"since":0}`, room))
	var last uint64
	var out []json.RawMessage
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading %s: %v", room, err)
		}
		var m struct {
			Type string
			Seq  uint64
			Data json.RawMessage
		}
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "joined":
			last = m.Seq
		case "message":
			out = append(out, m.Data)
			if m.Seq == last {
				return last, out
			}
		}
		if m.Type == "joined" && last == 0 {
			return 0, nil
		}
	}
}

// blackhole is a TCP proxy whose connections can be frozen: they stay
// open and forward nothing, as a dead path does.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen []*atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackhole{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			f := new(atomic.Bool)
			p.mu.Lock()
			p.frozen = append(p.frozen, f)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !f.Load() {
						if _, err := dst.Write(buf[:n]); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				if !f.Load() {
					_ = dst.Close()
					_ = src.Close()
				}
			}
			go pipe(s, c)
			go pipe(c, s)
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
		}
	}()
	return p
}

// freeze stops the connections open now from forwarding anything.
func (p *blackhole) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		f.Store(true)
	}
}

// TestBrowserClientDetectsDeadConnection: a path that silently stops
// forwarding (TCP stays open) is detected by streamd.js's heartbeat
// within two heartbeat intervals, and the client reconnects.
func TestBrowserClientDetectsDeadConnection(t *testing.T) {
	b, logs := browser(t)
	pages := pageServer(t)
	e := enginetest.Start(t, engine.Config{})
	proxy := newBlackhole(t, e.Addr().String())
	const hb = 300 * time.Millisecond
	page := pages.URL + "/client.html?" + url.Values{"ws": {"ws://" + proxy.ln.Addr().String() + "/ws"}, "room": {"live"},
		"hb": {fmt.Sprint(hb.Milliseconds())}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigate: %v\n%s", err, logs())
	}
	pollPage(t, b, logs, "the join", "window.t.joined", 15*time.Second)
	time.Sleep(2 * hb) // a few heartbeats through the proxy
	proxy.freeze()
	frozen := time.Now()
	pollPage(t, b, logs, "the dead connection's detection", `window.t.state !== "connected"`, 5*time.Second)
	detected := time.Since(frozen)
	// The client declares the path dead once it has received nothing for
	// two heartbeat intervals (checked every 1/16 of that).
	silence := time.Duration(readPage(t, b, logs).DeadSilence) * time.Millisecond
	if silence < 2*hb || silence > 2*hb+2*hb/16+20*time.Millisecond {
		t.Errorf("the client declared the path dead after %v of silence; want two heartbeat intervals (%v)", silence, 2*hb)
	}
	if detected > 3*hb {
		t.Errorf("the dead path was detected %v after it froze; want within about two heartbeat intervals (%v)", detected, 2*hb)
	}
	pollPage(t, b, logs, "the reconnect", `window.t.state === "connected"`, 10*time.Second)
	t.Logf("heartbeat %v: a silent path was declared dead after %v of silence, %v after it froze (Go's polling included); the client reconnected", hb, silence, detected)
}

package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coder/websocket"
	"streamd/internal/chromiumtest"
)

// chromiumPath is Debian's chromium (scripts/test-deps.sh installs it).
const chromiumPath = chromiumtest.Path

// pageFrame and pageState mirror window.e2e in testdata/chromium.html.
type pageFrame struct {
	Binary bool           `json:"binary"`
	Msg    map[string]any `json:"msg"`
}

type pageState struct {
	State      string      `json:"state"`
	Extensions string      `json:"extensions"`
	Protocol   string      `json:"protocol"`
	Frames     []pageFrame `json:"frames"`
	Errors     []string    `json:"errors"`
}

// chromiumPayload is what the page publishes in encoding kind; keep it in
// step with payload() in testdata/chromium.html.
func chromiumPayload(kind string) map[string]any {
	n := 1
	if kind == "binary" {
		n = 2
	}
	return map[string]any{
		"from":  "chromium",
		"kind":  kind,
		"text":  "héllo from Chromium ✓ 🚀",
		"n":     n,
		"neg":   -7,
		"neg16": -300,
		"u16":   60000,
		"u32":   4000000000,
		"f":     1.5,
		"ok":    true,
		"nil":   nil,
		"list":  []any{1, "two", []any{3}, map[string]any{"four": 4}},
		"pad":   strings.Repeat("chromium ", 64),
	}
}

func chromiumGoData() map[string]any {
	return map[string]any{"from": "go", "text": "hello from Go to Chromium ✓", "n": -42, "f": 0.25, "pad": strings.Repeat("go ", 100)}
}

// TestChromium: headless Chromium's own WebSocket (permessage-deflate
// negotiated by the browser) and a Go client share a room; the browser's
// JSON and msgpack messages reach the Go client and the Go client's message
// reaches the browser.
func TestChromium(t *testing.T) {
	needChromium(t)
	pages := pageServer(t) // /client.js: the page's msgpack codec is the shipped client's

	modes(t, func(t *testing.T, mode string) {
		ctx := deadline(t)
		_, wsURL := startEngine(t, mode)
		room := "e2e.chromium." + mode

		g := dialGo(ctx, t, wsURL, websocket.CompressionContextTakeover)
		g.join(ctx, room)

		browser, logs := browser(t)
		fatal := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s\nchromedp and chromium logs:\n%s", fmt.Sprintf(format, args...), logs())
		}

		start := time.Now()
		page := pages.URL + "/chromium.html?" + url.Values{"ws": {wsURL}, "room": {room}}.Encode()
		if err := chromedp.Do(browser, chromedp.Navigate(page)); err != nil {
			fatal("chromium: navigate to %s: %v", page, err)
		}
		launched := time.Since(start)
		state := func() pageState {
			t.Helper()
			s, err := chromedp.Run(browser, chromedp.Evaluate[pageState](`window.e2e`))
			if err != nil {
				fatal("chromium: read window.e2e: %v", err)
			}
			return s
		}
		waitFor := func(what, cond string) {
			t.Helper()
			_, err := chromedp.Run(browser, chromedp.Poll[bool](
				`window.e2e.state === "error" || (`+cond+`)`,
				chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
			if err != nil {
				fatal("chromium: waiting for %s: %v (page state %+v)", what, err, state())
			}
			if s := state(); s.State == "error" {
				fatal("chromium: page failed waiting for %s: %v\nframes: %+v", what, s.Errors, s.Frames)
			}
		}

		waitFor("its publishes", `window.e2e.state === "published"`)
		g.send(ctx, map[string]any{"type": "publish", "room": room, "id": "go-pub", "data": chromiumGoData()})
		waitFor("the Go message", `window.e2e.frames.filter(f => f.msg.type === "message").length >= 3`)

		// What the Go client received: the browser's two messages (the
		// msgpack one transcoded to JSON) and its own.
		want := map[string]any{
			"chromium/text":   jsonValue(t, chromiumPayload("text")),
			"chromium/binary": jsonValue(t, chromiumPayload("binary")),
			"go/":             jsonValue(t, chromiumGoData()),
		}
		var goMsgs []frame
		acked := false
		for len(goMsgs) < len(want) || !acked {
			f := g.next(ctx)
			switch f.Msg["type"] {
			case "message":
				goMsgs = append(goMsgs, f)
			case "ack":
				acked = f.Msg["id"] == "go-pub"
			default:
				t.Fatalf("go client: unexpected frame %s", f)
			}
		}
		goSeqs := checkMessages(t, "go client", room, goMsgs, want, payloadKey)

		// What the browser received.
		s := state()
		if len(s.Errors) > 0 {
			fatal("chromium: page errors: %v", s.Errors)
		}
		if !strings.Contains(s.Extensions, "permessage-deflate") {
			t.Errorf("chromium: ws.extensions = %q, want permessage-deflate negotiated", s.Extensions)
		}
		if s.Protocol != "" {
			t.Errorf("chromium: ws.protocol = %q, want none (none was asked)", s.Protocol)
		}
		var pageMsgs []frame
		acks := map[any]bool{}
		for i, f := range s.Frames {
			switch f.Msg["type"] {
			case "welcome":
				if i != 0 || f.Binary {
					t.Errorf("chromium: welcome is frame %d (binary %v), want the first, in JSON", i, f.Binary)
				}
			case "joined":
				if f.Msg["room"] != room || f.Msg["id"] != "chromium-join" || f.Binary {
					t.Errorf("chromium: joined = %+v (binary %v)", f.Msg, f.Binary)
				}
			case "ack":
				acks[f.Msg["id"]] = true
			case "message":
				pageMsgs = append(pageMsgs, frame{Binary: f.Binary, Msg: f.Msg, Raw: []byte(fmt.Sprint(f.Msg))})
			default:
				t.Errorf("chromium: unexpected frame %+v", f)
			}
		}
		pageSeqs := checkMessages(t, "chromium", room, pageMsgs, want, payloadKey)
		for k, seq := range goSeqs {
			if pageSeqs[k] != seq {
				t.Errorf("message %q: seq %d for the Go client, %d for Chromium", k, seq, pageSeqs[k])
			}
		}
		// The server answers in the encoding the client last used: the echo
		// of the browser's msgpack publish, and the Go message published
		// after it, come in binary frames.
		for _, f := range pageMsgs {
			if k := payloadKey(f.Msg["data"]); (k == "chromium/binary" || k == "go/") && !f.Binary {
				t.Errorf("chromium: message %q came in a text frame after the page sent msgpack", k)
			}
		}
		if !acks["chromium-text"] || !acks["chromium-binary"] {
			t.Errorf("chromium: acks for %v, want chromium-text and chromium-binary", acks)
		}

		// A clean close handshake initiated by the browser.
		if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.e2eClose()`)); err != nil {
			fatal("chromium: close: %v", err)
		}
		waitFor("the close handshake", `window.e2e.state === "closed"`)
		t.Logf("chromium: launch and load %v, whole exchange %v; extensions %q",
			launched.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), s.Extensions)
		g.close()
	})
}

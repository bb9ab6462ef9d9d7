package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"streamd/alerts"
	"streamd/engine"
	"streamd/engine/enginetest"
	"streamd/internal/chromiumtest"
	"streamd/pipeline"
)

// dashboardChromium is Debian's chromium (scripts/test-deps.sh installs it),
// as in e2e/chromium_test.go.
const dashboardChromium = chromiumtest.Path

// dashboardWait bounds each wait for the page.
const dashboardWait = 30 * time.Second

// The system rooms the dashboard reads (engine/snapshot.go).
const (
	metricsRoom = "$sys.metrics"
	alertsRoom  = "$sys.alerts"
)

// TestDashboardInChromium serves the admin mux, puts load on an engine,
// opens /dashboard/ in headless Chromium and checks that the page draws
// the snapshots of $sys.metrics (the history replayed at join, then live),
// shows the alerts of the snapshots and of $sys.alerts, and reconnects
// when the engine restarts. With UPDATE_SCREENSHOT=1 it rewrites
// docs/dashboard.png.
//
// Snapshots and alerts are the engine's own (MetricsInterval 200 ms and
// an alert rule on the incoming rate).
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts a headless Chromium")
	}
	if _, err := os.Stat(dashboardChromium); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("skipping: %s is missing (run `make test-deps`, or apt-get install chromium); with CI set this fails", dashboardChromium)
		}
		t.Fatalf("%s is missing and CI is set: `make test-deps` (scripts/test-deps.sh) must install Debian's chromium: %v", dashboardChromium, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*dashboardWait)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	eng := enginetest.Start(t, dashboardEngineConfig(logger, "127.0.0.1:0"))
	// The admin API has a token: the page logs in with ?token= once
	// (a cookie), and takes its admin ticket for $sys.* from config.json.
	a := &adminServer{}
	admin := httptest.NewServer(newAdminGuard(testAdminToken, false).wrap(a.mux(eng, logger, nil)))
	t.Cleanup(admin.Close)

	// config.json tells the page where the engine listens.
	code, body, _ := adminDo(t, "GET", admin.URL+"/dashboard/config.json", "Bearer "+testAdminToken, nil)
	var cfg dashboardConfig
	if err := json.Unmarshal([]byte(body), &cfg); code != 200 || err != nil {
		t.Fatalf("GET /dashboard/config.json = %d %q (%v)", code, body, err)
	}
	if port, _ := wsPort(eng); cfg.WSPort != port || cfg.WSPath != "/ws" || cfg.Token == "" {
		t.Fatalf("config.json = %+v, want ws_port %d, ws_path /ws and a token", cfg, port)
	}

	// The page itself, also at /dashboard (redirected), with its headers.
	req, _ := http.NewRequest("GET", admin.URL+"/dashboard", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<script src="app.js">`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /dashboard = %d %v, body %.200q", resp.StatusCode, resp.Header, page)
	}

	const (
		clients = 3
		every   = 10 * time.Millisecond // per client: 100 msgs/s
	)
	stopLoad := runLoad(t, enginetest.URL(eng), "dashboard.load", clients, every)

	p := openDashboard(ctx, t, admin.URL+"/dashboard/?token="+testAdminToken)

	// The engine's own snapshots (every 200 ms), carrying the load's rates
	// and the demo pipeline's nodes.
	p.waitFor("live snapshots", fmt.Sprintf(
		`s.status === "connected" && s.snapshots >= 5 && s.series.throughput >= 5 && s.series.latency >= 5`+
			` && s.series.conns >= 5 && s.series.histogram > 0 && s.latest.in_per_s > 0 && s.latest.connections >= %d && s.renders > 0`, clients))
	p.waitFor("every chart drawn", `document.querySelectorAll("#chart-throughput canvas, #chart-latency canvas, #chart-histogram canvas, #chart-conns canvas").length === 4`+
		` && document.querySelector("#pipelines tbody").textContent.includes("per_second") && s.pipelines >= 2`+
		` && document.querySelector("#stages tbody").textContent.includes("fanout")`)

	// The alert rule of dashboardEngineConfig fires under this load: it
	// reaches the page through $sys.alerts and the snapshots.
	p.waitFor("the alert on the page", `s.alerts.includes("busy")`+
		` && document.getElementById("alerts-firing").textContent.includes("more than 100 messages/s")`+
		` && document.getElementById("alerts-events").textContent.includes("busy")`)
	p.checkNoErrors()
	p.screenshot()

	// Without load the rule resolves and the alert leaves the page.
	stopLoad()
	p.waitFor("the resolved alert gone", `!s.alerts.includes("busy")`)

	// An engine restart on the same port: the page reconnects with
	// backoff, sees the rooms' seqs begin again and goes on drawing. The
	// old engine's $sys.metrics seq is pushed high first (copies of its
	// last snapshot, which the page skips as repeats), so the new
	// engine's seqs stay below it for the rest of the test.
	last, _ := json.Marshal(eng.Metrics())
	for i := 0; i < 400; i++ {
		if _, err := eng.Publish(metricsRoom, last); err != nil {
			t.Fatal(err)
		}
	}
	p.waitFor("the old engine's high seq", fmt.Sprintf(`s.seq[%q] >= 400`, metricsRoom))
	addr := eng.Addr().String()
	closeCtx, cancelClose := context.WithTimeout(ctx, 5*time.Second)
	err = eng.Close(closeCtx)
	cancelClose()
	if err != nil {
		t.Fatalf("engine Close: %v", err)
	}
	// With nothing listening, each try fails and the next waits longer.
	p.waitFor("the status line to count down to the second try", `s.status === "reconnecting" && s.reconnects >= 2`+
		` && /reconnecting in [0-9.]+ s \(attempt 2\)/.test(document.getElementById("status-text").textContent)`)
	before := p.state()
	_, err = startEngineAt(t, dashboardEngineConfig(logger, addr))
	if err != nil {
		t.Logf("restart phase skipped: cannot listen on %s again: %v", addr, err)
		return
	}
	// The new engine's seqs begin at 1: the page must take them although
	// they are below the last seq it saw (it would drop them otherwise,
	// until they pass it).
	p.waitFor("a reconnect after the restart", fmt.Sprintf(`s.connects >= 2 && s.status === "connected" && s.snapshots >= %d && s.seq[%q] < %d`,
		before.Snapshots+3, metricsRoom, before.Seq[metricsRoom]))
	if st := p.state(); len(st.Errors) > 0 {
		p.fatal("page errors after the restart: %v", st.Errors)
	}
}

// dashboardEngineConfig is the engine of TestDashboardInChromium: a
// snapshot every 200 ms, an alert rule that the test's load trips, and a
// small pipeline for the nodes table.
func dashboardEngineConfig(logger *slog.Logger, listen string) engine.Config {
	specs, err := pipeline.ParseYAML([]byte(`
- name: demo
  input: {generator: {kind: counter, rate: 50}}
  nodes:
    - {name: odd, op: filter, if: "int(data.n) % 2 == 1"}
    - {name: per_second, op: aggregate, window: {tumbling: 1s}, fn: count}
  output: {room: demo}
`))
	if err != nil {
		panic(err)
	}
	return engine.Config{Listen: listen, Logger: logger, MetricsInterval: 200 * time.Millisecond, Auth: engine.AuthConfig{Anonymous: true},
		Alerts: []alerts.Rule{{Name: "busy", Metric: "messages.in_per_s", Op: ">", Threshold: 100,
			Severity: "warning", Message: "more than 100 messages/s", Action: "watch the dashboard"}},
		Pipelines: specs}
}

// startEngineAt starts an engine on cfg.Listen, retrying for a second
// while the old listener's port is released, and closes it when t ends.
func startEngineAt(t *testing.T, cfg engine.Config) (*engine.Engine, error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Second); ; {
		var e *engine.Engine
		if e, err = engine.New(cfg); err != nil {
			return nil, err
		}
		if err = e.Start(); err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := e.Close(ctx); err != nil {
					t.Errorf("engine Close: %v", err)
				}
			})
			return e, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- the page ---------------------------------------------------------------

// dashboardPage is the dashboard open in a headless Chromium.
type dashboardPage struct {
	t       *testing.T
	browser context.Context
	logs    *chromiumtest.Log // chromedp's and Chromium's own output
	console *chromiumtest.Log // the page's console, exceptions and browser log
}

// pageState mirrors window.dashboardState in dashboard/app.js.
type pageState struct {
	Status     string         `json:"status"`
	WSURL      string         `json:"wsURL"`
	Connects   int            `json:"connects"`
	Reconnects int            `json:"reconnects"`
	Snapshots  int            `json:"snapshots"`
	Seq        map[string]int `json:"seq"`
	Series     map[string]int `json:"series"`
	Alerts     []string       `json:"alerts"`
	Events     int            `json:"alertEvents"`
	Pipelines  int            `json:"pipelines"`
	Renders    int            `json:"renders"`
	Errors     []string       `json:"errors"`
}

func openDashboard(ctx context.Context, t *testing.T, url string) *dashboardPage {
	t.Helper()
	p := &dashboardPage{t: t, logs: &chromiumtest.Log{}, console: &chromiumtest.Log{}}
	// Not t.TempDir: Chromium's helpers may still write there after it
	// exits, and a failed removal would fail the test.
	profile, err := os.MkdirTemp("", "streamd-dashboard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	allocCtx, cancelAlloc := chromiumtest.NewAllocator(ctx, dashboardChromium, profile, p.logs,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"))
	t.Cleanup(cancelAlloc) // runs before TempDir's removal: waits for Chromium's exit
	browser, cancelBrowser := chromedp.NewContext(allocCtx,
		chromedp.WithLogf(p.logs.Printf), chromedp.WithErrorf(p.logs.Printf))
	p.browser = browser
	consoleDone := make(chan struct{})
	t.Cleanup(func() {
		cancelBrowser()
		<-consoleDone
	})

	start := time.Now()
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1440, 1000)); err != nil {
		close(consoleDone)
		p.fatal("chromium: start: %v", err)
	}
	msgs := chromedp.Console(browser)
	go func() {
		defer close(consoleDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.console.Printf("%s %s", m.String(), m.URL)
		}
	}()
	if err := chromedp.Do(browser, chromedp.Navigate(url)); err != nil {
		p.fatal("chromium: navigate to %s: %v", url, err)
	}
	t.Logf("chromium: started and loaded %s in %v", url, time.Since(start).Round(time.Millisecond))
	return p
}

// fatal fails the test with what the page and Chromium said.
func (p *dashboardPage) fatal(format string, args ...any) {
	p.t.Helper()
	state := "(unreadable)"
	if s, err := chromedp.Run(p.browser, chromedp.Evaluate[string](`JSON.stringify(window.dashboardState)`)); err == nil {
		state = s
	}
	p.t.Fatalf("%s\nwindow.dashboardState: %s\npage console:\n%s\nchromedp and chromium logs:\n%s",
		fmt.Sprintf(format, args...), state, p.console.String(), p.logs.String())
}

func (p *dashboardPage) state() pageState {
	p.t.Helper()
	s, err := chromedp.Run(p.browser, chromedp.Evaluate[pageState](`window.dashboardState`))
	if err != nil {
		p.fatal("chromium: read window.dashboardState: %v", err)
	}
	return s
}

// waitFor polls cond, a JS expression over s (window.dashboardState) and
// the DOM, for up to dashboardWait.
func (p *dashboardPage) waitFor(what, cond string) {
	p.t.Helper()
	start := time.Now()
	expr := `(() => { const s = window.dashboardState; return !!s && !!s.series && (` + cond + `); })()`
	if _, err := chromedp.Run(p.browser, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(dashboardWait))); err != nil {
		p.fatal("dashboard: waiting for %s: %v\ncondition: %s", what, err, cond)
	}
	p.t.Logf("dashboard: %s after %v", what, time.Since(start).Round(time.Millisecond))
}

// checkNoErrors fails on page errors and on console errors and warnings.
func (p *dashboardPage) checkNoErrors() {
	p.t.Helper()
	if s := p.state(); len(s.Errors) > 0 {
		p.fatal("dashboard: page errors: %v", s.Errors)
	}
	for _, line := range strings.Split(p.console.String(), "\n") {
		if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "exception:") || strings.HasPrefix(line, "warning:") {
			p.fatal("dashboard: the console has %q", line)
		}
	}
}

// screenshot saves the whole page as PNG into the test's temp dir and,
// with UPDATE_SCREENSHOT=1, as docs/dashboard.png.
func (p *dashboardPage) screenshot() {
	p.t.Helper()
	png, err := chromedp.Run(p.browser, chromedp.FullScreenshot(100))
	if err != nil {
		p.fatal("chromium: screenshot: %v", err)
	}
	if len(png) < 20<<10 {
		p.fatal("chromium: a %d-byte screenshot: the page is likely blank", len(png))
	}
	paths := []string{filepath.Join(p.t.TempDir(), "dashboard.png")}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		paths = append(paths, filepath.Join("..", "..", "docs", "dashboard.png"))
	}
	for _, path := range paths {
		if err := os.WriteFile(path, png, 0o644); err != nil {
			p.t.Fatal(err)
		}
		p.t.Logf("dashboard: screenshot (%d KiB) in %s", len(png)>>10, path)
	}
}

// ---- load -------------------------------------------------------------------

// runLoad connects clients gorilla/websocket clients to url, joins each to
// room and has each publish every `every`, until stop (also run at the
// test's end). Every client is a member, so out ≈ in × clients.
func runLoad(t *testing.T, url, room string, clients int, every time.Duration) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var readers, writers sync.WaitGroup
	var conns []*websocket.Conn
	errs := make(chan error, 2*clients)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := range clients {
		c, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("load: dial %s: %v", url, err)
		}
		conns = append(conns, c)
		if err := c.WriteJSON(map[string]any{"type": "join", "room": room}); err != nil {
			t.Fatalf("load: join: %v", err)
		}
		readers.Add(1)
		writers.Add(1)
		go func() { // read everything, so the client is never a slow consumer
			defer readers.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() {
			defer writers.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-quit:
					return
				case <-tick.C:
				}
				msg := fmt.Sprintf(`{"type":"publish","room":%q,"data":{"client":%d,"n":%d,"text":"load for the dashboard test"}}`, room, i, n)
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					errs <- fmt.Errorf("load: client %d: publish %d: %w", i, n, err)
					return
				}
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(quit)
			writers.Wait() // the publishers are done writing before the close frames go
			for _, c := range conns {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				_ = c.Close()
			}
			readers.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

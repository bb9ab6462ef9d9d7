package main

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"time"

	"streamd/engine"
)

// dashboardFiles is the live dashboard: a static page (dashboard/index.html,
// app.js, style.css) and the charting library it draws with
// (dashboard/vendor/, uPlot; its README.md says which version). No build
// step: the files are served as they are.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardConfig is GET /dashboard/config.json: where the page finds the
// engine's WebSocket endpoint. The page connects to
// ws://<the host it was loaded from>:WSPort/WSPath, authenticates with
// Token (an admin ticket: the $sys.* rooms are admin-only), joins
// "$sys.metrics" and "$sys.alerts", and draws what the engine publishes
// there. It asks for a new ticket before each connect and at half of
// TokenTTLS.
type dashboardConfig struct {
	WSPort    int    `json:"ws_port"`
	WSPath    string `json:"ws_path"`
	Token     string `json:"token"`
	TokenTTLS int    `json:"token_ttl_s"`
}

// dashboardTicketTTL is the lifetime of the dashboard's admin tickets.
const dashboardTicketTTL = 10 * time.Minute

// registerDashboard adds the live dashboard to the admin mux:
//
//	GET /dashboard/             the page and its assets (embedded)
//	GET /dashboard/config.json  the engine's WebSocket port and path
//
// eng must be started before config.json is asked for (its port is read
// at each request, so a mux built earlier is fine).
func registerDashboard(mux *http.ServeMux, eng *engine.Engine) {
	root, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic("streamd: dashboard files: " + err.Error()) // the embed pattern above guarantees the directory
	}
	files := http.StripPrefix("/dashboard/", http.FileServerFS(root))
	mux.HandleFunc("GET /dashboard/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The embedded files carry no modification time, so revalidate
		// every load: a new binary's page is never mixed with an old one's.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		// The page loads only its own files and talks only to its own
		// host's HTTP and to a WebSocket (on the engine's port).
		h.Set("Content-Security-Policy",
			"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /dashboard/config.json", func(w http.ResponseWriter, _ *http.Request) {
		port, err := wsPort(eng)
		if err != nil {
			http.Error(w, "dashboard: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		ticket, err := eng.AdminTicket("dashboard", dashboardTicketTTL)
		if err != nil {
			http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(dashboardConfig{WSPort: port, WSPath: eng.Config().Path,
			Token: ticket, TokenTTLS: int(dashboardTicketTTL / time.Second)})
	})
}

// wsPort returns the port the engine's WebSocket listener is bound to.
func wsPort(eng *engine.Engine) (int, error) {
	addr := eng.Addr()
	if addr == nil {
		return 0, errors.New("the engine is not listening yet")
	}
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		return 0, fmt.Errorf("the engine's address %q: %w", addr, err)
	}
	return strconv.Atoi(p)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"streamd/engine"
)

// adminServer is the admin HTTP server: net/http on its own listener, never
// on the WebSocket port and never on http.DefaultServeMux.
type adminServer struct {
	srv      *http.Server
	ln       net.Listener
	errc     chan error  // receives Serve's error if it stops by itself
	draining atomic.Bool // set at shutdown: /healthz answers 503
}

const adminIndex = `streamd admin
  /healthz        200 "ok" while serving, 503 while shutting down
  /metrics        Prometheus metrics (streamd_*, go_*, process_*)
  /stats          engine.Stats as JSON
  /debug/pprof/   Go profiles (net/http/pprof)
`

// startAdmin listens on addr and serves the admin endpoints.
func startAdmin(addr string, eng *engine.Engine, logger *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &adminServer{ln: ln, errc: make(chan error, 1)}
	a.srv = &http.Server{
		Handler:           a.mux(eng, logger),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// No WriteTimeout: /debug/pprof/profile streams for ?seconds=N.
	}
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()
	return a, nil
}

// addr returns the bound address.
func (a *adminServer) addr() net.Addr { return a.ln.Addr() }

// shutdown stops accepting and waits for in-flight requests (or ctx).
func (a *adminServer) shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if err != nil {
		_ = a.srv.Close()
	}
	return err
}

// mux builds the admin routes.
func (a *adminServer) mux(eng *engine.Engine, logger *slog.Logger) *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		eng.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(adminIndex))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if a.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry: reg, // adds promhttp_metric_handler_errors_total
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(eng.Stats())
	})
	// net/http/pprof, registered here explicitly: importing it also adds
	// its handlers to http.DefaultServeMux, which nothing serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"streamd/client/js"
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
  (with an admin token set, every path but /healthz needs Authorization: Bearer <token>)
  /healthz        200 "ok" while serving, 503 while shutting down
  /metrics        Prometheus metrics (streamd_*, go_*, process_*)
  /stats          engine.Stats as JSON
  /state?pipeline=P&key=K | &prefix=X&limit=N   what a pipeline's state sinks wrote (JSON)
  /backup         a full backup of the state store, streamed (streamd backup --admin)
  /stats/metrics  the latest metrics snapshot (what $sys.metrics carries; JSON)
  /stats/pipelines  every pipeline operator's counters and latency (JSON)
  POST /ingest?stream=S   feed S's pipelines: one JSON value, or JSON lines
  POST /reload    re-read the config file and swap in changed pipelines (as SIGHUP)
  /presence?room=R[&cursor=C&limit=N]   a presence room's members, paged (JSON)
  /presence/stats?room=R                its member and unique-user counts (JSON)
  /dashboard/     the live dashboard
  /debug/pprof/   Go profiles (net/http/pprof)
`

// startAdmin listens on addr and serves the admin endpoints.
// reload is what POST /reload runs (nil: no config file to re-read).
// guard, when not nil, asks every request for the admin token.
func startAdmin(addr string, eng *engine.Engine, logger *slog.Logger, reload func() error, guard *adminGuard) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &adminServer{ln: ln, errc: make(chan error, 1)}
	a.srv = &http.Server{
		Handler:           guard.wrap(a.mux(eng, logger, reload)),
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
func (a *adminServer) mux(eng *engine.Engine, logger *slog.Logger, reload func() error) *http.ServeMux {
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
	mux.HandleFunc("GET /stats/metrics", func(w http.ResponseWriter, _ *http.Request) {
		snap := eng.Metrics()
		if snap == nil {
			http.Error(w, "no snapshot yet (the first comes after metrics_interval; negative turns them off)", http.StatusServiceUnavailable)
			return
		}
		writeJSONOr(w, snap, nil)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := parseUintParam(q.Get("limit"))
		if err != nil || q.Get("pipeline") == "" {
			http.Error(w, "state: want ?pipeline=P and key=K or prefix=X (limit=N)", http.StatusBadRequest)
			return
		}
		ents, err := eng.State(q.Get("pipeline"), q.Get("key"), q.Get("prefix"), int(min(limit, 10000)))
		if err != nil {
			code := http.StatusNotFound
			if !strings.Contains(err.Error(), "not found") {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		writeJSONOr(w, ents, nil)
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="streamd.backup"`)
		// The trailer says the stream is whole: a failure after the first
		// bytes can no longer change the status code.
		w.Header().Set("Trailer", backupTrailer)
		if _, err := eng.Backup(w); err != nil {
			logger.Error("backup failed", "err", err)
			http.Error(w, "backup: "+err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set(backupTrailer, "complete")
	})
	// The browser client (public: web pages load it).
	mux.Handle("GET /client.js", js.Handler())
	mux.Handle("GET /client.d.ts", js.Handler())
	mux.HandleFunc("POST /erase", func(w http.ResponseWriter, r *http.Request) {
		// A data-protection request: everything held for one user or key.
		subject := r.URL.Query().Get("subject")
		if subject == "" {
			http.Error(w, "erase: want ?subject=USER_OR_KEY", http.StatusBadRequest)
			return
		}
		rep, err := eng.Erase(r.Context(), subject)
		if err != nil {
			logger.Error("erase failed", "subject", subject, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "erased": rep})
			return
		}
		logger.Info("erased", "subject", subject, "messages", rep.Messages, "positions", len(rep.Positions), "records", len(rep.State))
		writeJSONOr(w, rep, nil)
	})
	mux.HandleFunc("GET /stats/pipelines", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(eng.PipelineStats())
	})
	mux.HandleFunc("GET /presence", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cursor, err1 := parseUintParam(q.Get("cursor"))
		limit, err2 := parseUintParam(q.Get("limit"))
		if err := errors.Join(err1, err2); err != nil {
			http.Error(w, "presence: cursor and limit are non-negative integers", http.StatusBadRequest)
			return
		}
		pg, err := eng.Presence(q.Get("room"), cursor, int(min(limit, 1<<20)))
		writeJSONOr(w, pg, err)
	})
	mux.HandleFunc("GET /presence/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := eng.PresenceStats(r.URL.Query().Get("room"))
		writeJSONOr(w, st, err)
	})
	mux.HandleFunc("POST /ingest", func(w http.ResponseWriter, r *http.Request) {
		ingest(w, r, eng)
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if reload == nil {
			http.Error(w, "no config file to reload: streamd runs on its embedded default", http.StatusConflict)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		_, _ = w.Write([]byte("reloaded\n"))
	})
	registerDashboard(mux, eng)
	// net/http/pprof, registered here explicitly: importing it also adds
	// its handlers to http.DefaultServeMux, which nothing serves.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// maxIngestBody caps one /ingest request.
const maxIngestBody = 16 << 20

// ingest feeds the request body to the pipelines of ?stream=: one JSON
// value, or JSON lines (one event each). It answers with the count fed,
// or 400 naming the first bad line (the lines before it were fed).
func ingest(w http.ResponseWriter, r *http.Request, eng *engine.Engine) {
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		http.Error(w, "ingest: want ?stream=NAME", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIngestBody))
	if err != nil {
		http.Error(w, "ingest: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	lines := [][]byte{body}
	if !json.Valid(body) {
		lines = lines[:0]
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), maxIngestBody)
		for sc.Scan() {
			lines = append(lines, sc.Bytes())
		}
	}
	n := 0
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			http.Error(w, fmt.Sprintf("ingest: line %d is not JSON (%d fed before it)", i+1, n), http.StatusBadRequest)
			return
		}
		if err := eng.Ingest(r.Context(), stream, line); err != nil {
			code := http.StatusServiceUnavailable
			if strings.Contains(err.Error(), "no pipeline reads") {
				code = http.StatusNotFound
			}
			http.Error(w, fmt.Sprintf("ingest: %v (%d fed)", err, n), code)
			return
		}
		n++
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"ingested\":%d}\n", n)
}

func parseUintParam(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// writeJSONOr writes v as JSON, or err as 404 (presence off, no such
// room) or 400 (a bad room name).
func writeJSONOr(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), engine.CodePresenceOff) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// backupTrailer is the HTTP trailer GET /backup sets when the stream is whole.
const backupTrailer = "X-Streamd-Backup"

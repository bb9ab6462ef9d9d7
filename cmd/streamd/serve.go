package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"streamd/engine"
)

// shutdownTimeout bounds engine.Close: clients get close 1001 and this long
// to leave. adminShutdownTimeout then bounds the admin server's Shutdown.
const (
	shutdownTimeout      = 5 * time.Second
	adminShutdownTimeout = 2 * time.Second
)

// serveFlags are serve's command-line flags.
type serveFlags struct {
	config, listen, admin, data string
	inMemory                    bool
	logLevel, logFormat         string
	profileRates                bool
	set                         map[string]bool // flags given on the command line
}

// parseServeFlags parses serve's flags. A flag error has already been
// printed (with the flag list) to stderr when it returns one.
func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "YAML config `FILE` (default: the embedded demo config)")
	fs.StringVar(&f.listen, "listen", "", "WebSocket `HOST:PORT` (env STREAMD_LISTEN; default "+defaultListen+")")
	fs.StringVar(&f.admin, "admin", "", "admin HTTP `HOST:PORT`, \"\" = off (env STREAMD_ADMIN; default "+defaultAdmin+")")
	fs.StringVar(&f.data, "data", "", "state `DIR`, \"\" = in memory (env STREAMD_DATA; default "+defaultData+")")
	fs.BoolVar(&f.inMemory, "in-memory", false, "keep no files (same as --data \"\")")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.BoolVar(&f.profileRates, "profile-rates", false, "sample mutex contention and blocking for /debug/pprof/mutex and /block (costs a little)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: streamd serve [flags]")
		fmt.Fprintln(stderr, "Precedence: flag > environment > config file > built-in default. Flags take - or --.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("serve: unexpected argument %q (flags only; did you mean --config %s?)", fs.Arg(0), fs.Arg(0))
		fmt.Fprintln(stderr, err)
		return nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.inMemory && f.set["data"] && f.data != "" {
		err := fmt.Errorf("serve: --in-memory and --data %q contradict each other: give one", f.data)
		fmt.Fprintln(stderr, err)
		return nil, err
	}
	return f, nil
}

// overrides returns the settings the command line gives.
func (f *serveFlags) overrides() overrides {
	var o overrides
	if f.set["listen"] {
		o.listen = &f.listen
	}
	if f.set["admin"] {
		o.admin = &f.admin
	}
	if f.set["data"] {
		o.data = &f.data
	}
	if f.inMemory {
		empty := ""
		o.data = &empty
	}
	return o
}

// newLogger builds the process logger: slog to w, text or JSON.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("serve: --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("serve: --log-format %q: want text or json", format)
	}
}

// serveMain is `streamd serve`: resolve the config, start the engine and
// the admin server, log `listening`, and shut down gracefully when ctx ends.
func serveMain(ctx context.Context, args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fc, name, err := loadConfig(f.config)
	if err != nil {
		fmt.Fprintf(stderr, "streamd: %v\n", err)
		return exitFail
	}
	s := resolve(fc, envOverrides(lookupEnv), f.overrides())
	if err := s.check(); err != nil {
		fmt.Fprintf(stderr, "streamd: %s (with flags and STREAMD_* applied):\n", name)
		for _, line := range splitErrors(err) {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return exitFail
	}
	slog.SetDefault(logger)
	if f.profileRates {
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	logger.Info("starting", "version", version, "go", runtime.Version(), "config", name)
	if s.Data == "" {
		logger.Info("state in memory (--in-memory or data \"\"): durable rooms do not survive a restart")
	} else {
		logger.Info("state directory (durable rooms' logs)", "data", s.Data)
	}

	cfg := s.Engine
	cfg.Data = s.Data
	cfg.Logger = logger
	eng, err := engine.New(cfg)
	if err != nil {
		logger.Error("engine config", "err", err)
		return exitFail
	}
	if err := eng.Start(); err != nil {
		logger.Error("engine start", "err", err)
		return exitFail
	}
	ec := eng.Config()
	logger.Info("engine started", "mode", ec.Mode, "loops", ec.Loops, "workers", ec.Workers,
		"max_connections", ec.MaxConnections, "room_policies", len(ec.Rooms), "pipelines", len(ec.Pipelines))

	// Reload re-reads the TLS certificate and key (if any) and the config
	// file, and swaps in its pipelines; other settings need a restart.
	// SIGHUP and POST /reload both call it.
	var reload func() error
	if f.config != "" {
		var reloadMu sync.Mutex
		reload = func() error {
			reloadMu.Lock()
			defer reloadMu.Unlock()
			// The certificate first: it does not depend on the config
			// parsing. A failure keeps the old one (logged by the engine).
			tlsErr := eng.ReloadTLS()
			fc, _, err := loadConfig(f.config)
			if err != nil {
				logger.Error("reload refused: config has errors; the running pipelines are kept", "err", err)
				return errors.Join(tlsErr, err)
			}
			if err := eng.ReloadPipelines(fc.Engine.Pipelines); err != nil {
				logger.Error("reload failed", "err", err)
				return errors.Join(tlsErr, err)
			}
			logger.Info("reloaded pipelines", "config", name, "pipelines", len(fc.Engine.Pipelines))
			return tlsErr
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					_ = reload()
				}
			}
		}()
	}

	var admin *adminServer
	adminURL := "off"
	if s.Admin != "" {
		guard := newAdminGuard(s.AdminToken, s.AdminAuth.OpenMetrics)
		if guard == nil && s.AdminAuth.AllowOpen && !loopbackAddr(s.Admin) {
			logger.Warn("the admin API is open to the network without a token (admin_auth.allow_open): anyone who reaches it can read state, take backups and reload the config", "admin", s.Admin)
		}
		admin, err = startAdmin(s.Admin, eng, logger, reload, guard)
		if err != nil {
			logger.Error("admin server: set --admin to another address, or \"\" to turn it off", "err", err, "admin", s.Admin)
			closeEngine(eng, logger)
			return exitFail
		}
		adminURL = "http://" + admin.addr().String()
	}
	if ta := eng.TLSAddr(); ta != nil {
		logger.Info("listening", "ws", "ws://"+eng.Addr().String()+ec.Path, "admin", adminURL, "wss", "wss://"+ta.String()+ec.Path)
	} else {
		logger.Info("listening", "ws", "ws://"+eng.Addr().String()+ec.Path, "admin", adminURL)
	}

	status := exitOK
	var adminErr <-chan error
	if admin != nil {
		adminErr = admin.errc
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "cause", context.Cause(ctx).Error(), "timeout", shutdownTimeout.String())
	case err := <-adminErr:
		logger.Error("admin server stopped; shutting down", "err", err)
		status = exitFail
	}
	if admin != nil {
		admin.draining.Store(true) // /healthz answers 503 from now on
	}
	if !closeEngine(eng, logger) {
		status = exitFail
	}
	if admin != nil {
		actx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		if err := admin.shutdown(actx); err != nil {
			logger.Warn("admin server shutdown", "err", err)
		}
		cancel()
	}
	st := eng.Stats()
	logger.Info("stopped", "accepted", st.Accepted, "received", st.Received,
		"published", st.Published, "delivered", st.Delivered)
	return status
}

// closeEngine closes eng within shutdownTimeout and reports success.
func closeEngine(eng *engine.Engine, logger *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := eng.Close(ctx); err != nil {
		logger.Error("engine shutdown", "err", err)
		return false
	}
	return true
}

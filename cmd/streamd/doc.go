// Command streamd is the streamd engine binary (DESIGN.md, "Command-line
// contract").
//
//	streamd serve [--config FILE] [--listen HOST:PORT] [--admin HOST:PORT]
//	              [--data DIR | --in-memory] [--log-level L] [--log-format F]
//	streamd validate FILE
//	streamd version
//
// # What it owns
//
//   - Flags, the environment and the YAML config file, merged into one
//     resolved configuration (settings). Precedence, highest first:
//     flag > environment (STREAMD_LISTEN, STREAMD_ADMIN, STREAMD_DATA,
//     STREAMD_MODE) > config file (or the embedded default.yaml when
//     --config is not given) > built-in defaults. Library packages never
//     read flags, files or the environment (STYLE.md, habit 8).
//   - The admin HTTP server (net/http on its own listener): /healthz,
//     /metrics, /stats and /debug/pprof/.
//   - Logging (log/slog) and the process lifecycle: start, the `listening`
//     line, SIGINT/SIGTERM, graceful shutdown.
//
// # Exit status
//
// 0 on success (serve: after a clean shutdown), 1 when the work failed (a
// config that does not validate, a listener that cannot bind, a shutdown
// error), 2 for a usage error (unknown command or flag).
//
// Only this package parses config; it hands engine.New a plain
// engine.Config.
package main

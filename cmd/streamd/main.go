package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at link time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the work failed: bad config, bind error, shutdown error
	exitUsage = 2 // unknown command or flag, missing argument
)

const usageText = `streamd — a single-node streaming engine for real-time AI and event data.

Usage:
  streamd serve [flags]      run the engine until SIGINT/SIGTERM
  streamd validate FILE      check a config file; prints "ok" or the errors
  streamd top [--admin HOST:PORT] [--interval D] [--once]
                             live text view of a running engine's metrics
  streamd backup --out FILE (--admin HOST:PORT | --data DIR)
                             full backup of the state store (running or stopped engine)
  streamd restore --data DIR --in FILE
                             load a backup into a new data directory
  streamd version            print the version and the Go version
  streamd help               print this text

Serve flags (flag > environment > config file > built-in default):
  --config FILE          YAML config (default: the embedded demo config)
  --listen HOST:PORT     WebSocket address, endpoint ws://HOST:PORT/ws
                         (env STREAMD_LISTEN; default 127.0.0.1:8080)
  --admin HOST:PORT      admin HTTP address; "" turns it off
                         (env STREAMD_ADMIN; default 127.0.0.1:9090)
  --data DIR             state directory; "" keeps state in memory
                         (env STREAMD_DATA; default ./data; used by durable rooms
                         and the state and session pipeline nodes)
  --in-memory            same as --data ""
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    text or json (default text); logs go to stderr
Environment only: STREAMD_MODE=auto|inline|rings overrides the file's mode.

Run 'streamd serve -h' for the flag list as Go prints it.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default action so that a
		// second SIGINT/SIGTERM ends a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes one command line and returns the exit status. ctx ends
// serve (main cancels it on SIGINT/SIGTERM).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveMain(ctx, rest, stderr, lookupEnv)
	case "validate":
		return validateMain(rest, stdout, stderr)
	case "top":
		return topMain(ctx, rest, stdout, stderr)
	case "backup":
		return backupMain(rest, stdout, stderr)
	case "restore":
		return restoreMain(rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "streamd version: unexpected argument %q\n", rest[0])
			return exitUsage
		}
		fmt.Fprintf(stdout, "streamd %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "streamd: unknown command %q: want serve, validate, top, backup, restore or version (run 'streamd help')\n", cmd)
		return exitUsage
	}
}

// validateMain is `streamd validate FILE`: strict YAML parse, then every
// setting checked (the engine's Validate included). The environment and
// flags play no part: it checks the file as written.
func validateMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: streamd validate FILE") }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	if path == "" {
		fmt.Fprintln(stderr, "streamd validate: FILE is empty")
		return exitUsage
	}
	fc, name, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "streamd: %v\n", err)
		return exitFail
	}
	s := resolve(fc, overrides{}, overrides{})
	if err := s.check(); err != nil {
		fmt.Fprintf(stderr, "streamd: %s:\n", name)
		for _, line := range splitErrors(err) {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return exitFail
	}
	fmt.Fprintln(stdout, "ok")
	return exitOK
}

// splitErrors flattens an errors.Join tree into one message per line.
func splitErrors(err error) []string {
	var out []string
	for _, e := range splitErrorValues(err) {
		out = append(out, e.Error())
	}
	return out
}

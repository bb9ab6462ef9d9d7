// Command streamload is streamd's load generator. Only the idle scenario
// exists so far; the open-loop scenarios come with the measuring-stick issue.
//
//	streamload idle [--addr HOST:PORT] [--conns N] [--rooms N] [--hold D] [--pid PID] [--sources 127.0.0.2,127.0.0.3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"streamd/loadtest"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "idle" {
		fmt.Fprintln(os.Stderr, "usage: streamload idle [flags]   (other scenarios: not yet implemented)")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var o loadtest.IdleOptions
	var sources string
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "engine WebSocket address (loopback only)")
	fs.IntVar(&o.Conns, "conns", 10_000, "connections to open")
	fs.IntVar(&o.Rooms, "rooms", 100, "rooms to spread them over")
	fs.DurationVar(&o.Hold, "hold", 5*time.Second, "how long to hold them before measuring")
	fs.IntVar(&o.PID, "pid", 0, "server pid, to report its RSS per connection")
	fs.StringVar(&sources, "sources", "", "comma-separated local IPs to dial from (127.0.0.x) when ports run short")
	_ = fs.Parse(os.Args[2:])
	if sources != "" {
		o.Sources = strings.Split(sources, ",")
	}
	if !strings.HasPrefix(o.Addr, "127.") && !strings.HasPrefix(o.Addr, "localhost:") && !strings.HasPrefix(o.Addr, "[::1]:") {
		fmt.Fprintln(os.Stderr, "streamload: --addr must be a loopback address")
		os.Exit(2)
	}
	if n, err := loadtest.RaiseFileLimit(); err != nil || n < uint64(o.Conns)+100 {
		fmt.Fprintf(os.Stderr, "streamload: open-file limit %d may be too low for %d connections (%v)\n", n, o.Conns, err)
	}
	res, err := loadtest.Idle(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(res)
}

// Command streamload is streamd's open-loop load generator.
//
//	streamload echo   [--conns 1000] [--rate 10000] [flags]   every connection in its own room, publishing and receiving its own messages
//	streamload pipeline [--conns 1000] [--stream load] [--rate 10000] [flags]   `event` messages through a pipeline, `result` back to the sender (needs a pipeline reading the stream)
//	streamload fanout [--subs 10000] [--pubs 1] [--rate 10] [--slow 0] [flags]   one room of subscribers, publishers outside it
//	streamload storm  [--subs 1000] [--rooms 100] [--rate 1000] [--drop 0.3] [flags]   drop a share of subscribers mid-run; they re-join with since; count what was lost
//	streamload ramp   [--of echo|fanout] [--start 10000] [--factor 1.25] [--p99 10ms] [flags]   the highest rate whose p99 stays under the bound
//	streamload idle   [--conns 10000] [--rooms 100] [--hold 5s] [--pid PID]   joined, silent connections; server RSS per connection
//
// Sends follow a fixed schedule at --rate messages per second in total;
// latency is measured from each message's scheduled send time, so the
// generator's own lateness counts against the result (no coordinated
// omission). --addr is HOST:PORT, a ws:// URL, or a wss:// URL (TLS, with
// --tls-ca FILE to trust a private CA or --tls-insecure for a self-signed
// test server; the generator terminates TLS per connection in front of
// its workers). Common flags: --addr (loopback only), --duration, --warmup,
// --drain, --size, --pid (server pid: its CPU and peak RSS), --label,
// --json FILE, --hgrm FILE (HdrHistogram percentile distribution, ms).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"streamd/loadtest"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: streamload echo|fanout|idle [flags]   (streamload SCENARIO -h for the flags)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "echo", "pipeline", "fanout", "storm":
		os.Exit(runScenario(ctx, os.Args[1], os.Args[2:]))
	case "ramp":
		os.Exit(runRamp(ctx, os.Args[2:]))
	case "idle":
		os.Exit(runIdle(ctx, os.Args[2:]))
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "streamload: unknown scenario %q\n", os.Args[1])
		usage()
	}
}

// targetFlags are the TLS flags that go with a wss:// --addr.
type targetFlags struct {
	ca       string
	insecure bool
}

func (tf *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.ca, "tls-ca", "", "wss: trust the PEM CA certificate(s) in `FILE` besides the system roots")
	fs.BoolVar(&tf.insecure, "tls-insecure", false, "wss: skip certificate verification (self-signed test servers only)")
}

// apply resolves a ws:// or wss:// --addr into HOST:PORT and path and
// returns the TLS config for wss (nil for plain).
func (tf *targetFlags) apply(addr, path *string) (*tls.Config, error) {
	hp, p, secure, err := loadtest.ParseTarget(*addr, *path)
	if err != nil {
		return nil, err
	}
	*addr, *path = hp, p
	if !secure {
		if tf.ca != "" || tf.insecure {
			return nil, errors.New("streamload: --tls-ca and --tls-insecure need a wss:// --addr")
		}
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(hp)
	return loadtest.ClientTLSConfig(host, tf.ca, tf.insecure)
}

// scenarioFlags registers the flags every load scenario shares.
func scenarioFlags(fs *flag.FlagSet, o *loadtest.Options, sources *string) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "server WebSocket address (loopback only): HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH")
	fs.StringVar(&o.Path, "path", "/ws", "WebSocket path")
	fs.StringVar(&o.Label, "label", "streamd", "server name recorded in the result")
	fs.IntVar(&o.Conns, "conns", 0, "echo: connections, each in its own room (default 1000)")
	fs.IntVar(&o.Subscribers, "subs", 0, "fanout: subscribers of the one room (default 10000)")
	fs.IntVar(&o.Publishers, "pubs", 0, "fanout: publishing connections (default 1)")
	fs.IntVar(&o.Slow, "slow", 0, "fanout: subscribers that never read")
	fs.StringVar(&o.Stream, "stream", "", "pipeline: stream the events feed (default load)")
	fs.IntVar(&o.Rooms, "rooms", 0, "storm: rooms, one publisher each (default 100)")
	fs.Float64Var(&o.DropShare, "drop", 0, "storm: share of subscribers dropped at once a third into the window (default 0.3)")
	fs.Float64Var(&o.Rate, "rate", 0, "total publishes per second (default 10000 echo, 10 fanout)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before the measured window")
	fs.DurationVar(&o.Drain, "drain", 2*time.Second, "wait for late messages after the last send")
	fs.IntVar(&o.Size, "size", 64, "data bytes per message")
	fs.DurationVar(&o.Tick, "tick", 200*time.Microsecond, "send batching granularity")
	fs.IntVar(&o.Burst, "burst", 1, "messages each connection sends back to back in one write per slot (1: evenly spaced)")
	fs.IntVar(&o.Workers, "workers", 0, "generator threads (default GOMAXPROCS)")
	fs.IntVar(&o.PID, "pid", 0, "server pid, for its CPU time and peak RSS")
	fs.StringVar(sources, "sources", "", "comma-separated local IPs to dial from (default 127.0.0.1, more when ports run short)")
}

func runScenario(ctx context.Context, scenario string, args []string) int {
	fs := flag.NewFlagSet(scenario, flag.ExitOnError)
	o := loadtest.Options{Scenario: scenario, Progress: os.Stderr}
	var jsonPath, hgrmPath, sources string
	var quiet bool
	scenarioFlags(fs, &o, &sources)
	fs.StringVar(&jsonPath, "json", "", "write the result as JSON to this file")
	fs.StringVar(&hgrmPath, "hgrm", "", "write the HDR percentile distribution (.hgrm, ms) to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	var tf targetFlags
	tf.register(fs)
	_ = fs.Parse(args)
	var err error
	if o.TLS, err = tf.apply(&o.Addr, &o.Path); err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "streamload:", err)
			return 1
		}
		defer f.Close()
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if sources != "" {
		o.Sources = strings.Split(sources, ",")
	}
	if quiet {
		o.Progress = nil
	}
	res, err := loadtest.Run(ctx, o)
	if err != nil && res == nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 1
	}
	fmt.Println(res.Summary())
	if jsonPath != "" {
		if err := res.WriteJSON(jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "streamload:", err)
			return 1
		}
	}
	if hgrmPath != "" {
		if err := res.WriteHgrm(hgrmPath); err != nil {
			fmt.Fprintln(os.Stderr, "streamload:", err)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 1
	}
	return 0
}

func runIdle(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var o loadtest.IdleOptions
	var sources string
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "engine WebSocket address (loopback only): HOST:PORT, ws:// or wss:// URL")
	fs.IntVar(&o.Conns, "conns", 10_000, "connections to open")
	fs.IntVar(&o.Rooms, "rooms", 100, "rooms to spread them over")
	fs.DurationVar(&o.Hold, "hold", 5*time.Second, "how long to hold them before measuring")
	fs.IntVar(&o.PID, "pid", 0, "server pid, to report its RSS per connection")
	fs.StringVar(&sources, "sources", "", "comma-separated local IPs to dial from (127.0.0.x) when ports run short")
	var tf targetFlags
	tf.register(fs)
	_ = fs.Parse(args)
	if sources != "" {
		o.Sources = strings.Split(sources, ",")
	}
	var err error
	if o.TLS, err = tf.apply(&o.Addr, &o.Path); err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 2
	}
	if !strings.HasPrefix(o.Addr, "127.") && !strings.HasPrefix(o.Addr, "localhost:") && !strings.HasPrefix(o.Addr, "[::1]:") {
		fmt.Fprintln(os.Stderr, "streamload: --addr must be a loopback address")
		return 2
	}
	if n, err := loadtest.RaiseFileLimit(); err != nil || n < uint64(o.Conns)+100 {
		fmt.Fprintf(os.Stderr, "streamload: open-file limit %d may be too low for %d connections (%v)\n", n, o.Conns, err)
	}
	res, err := loadtest.Idle(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(res)
	return 0
}

func runRamp(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("ramp", flag.ExitOnError)
	var ro loadtest.RampOptions
	var sources, jsonPath string
	scenarioFlags(fs, &ro.Base, &sources)
	fs.StringVar(&ro.Base.Scenario, "of", "echo", "scenario to ramp: echo or fanout")
	fs.Float64Var(&ro.Start, "start", 10_000, "first rate, msgs/s")
	fs.Float64Var(&ro.Factor, "factor", 1.25, "rate multiplier per step")
	fs.Float64Var(&ro.Max, "max", 2_000_000, "highest rate tried")
	fs.DurationVar(&ro.P99Bound, "p99", 10*time.Millisecond, "p99 bound a step must stay under")
	fs.StringVar(&jsonPath, "json", "", "write every step and the best as JSON to this file")
	var tf targetFlags
	tf.register(fs)
	_ = fs.Parse(args)
	if sources != "" {
		ro.Base.Sources = strings.Split(sources, ",")
	}
	var err error
	if ro.Base.TLS, err = tf.apply(&ro.Base.Addr, &ro.Base.Path); err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 2
	}
	if ro.Base.Duration == 10*time.Second {
		ro.Base.Duration = 5 * time.Second // shorter steps unless asked
	}
	ro.Log = os.Stderr
	res, err := loadtest.Ramp(ctx, ro)
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		return 1
	}
	if res.Best != nil {
		fmt.Printf("ramp: best %.0f msgs/s with p99 %.3f ms (bound %v); stopped because %s\n", res.Best.Rate, res.Best.P99ms, ro.P99Bound, res.Why)
	} else {
		fmt.Printf("ramp: no step passed; stopped because %s\n", res.Why)
	}
	if jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "streamload:", err)
			return 1
		}
	}
	return 0
}

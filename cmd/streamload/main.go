// Command streamload is streamd's open-loop load generator.
//
//	streamload echo   [--conns 1000] [--rate 10000] [flags]   every connection in its own room, publishing and receiving its own messages
//	streamload pipeline [--conns 1000] [--stream load] [--rate 10000] [flags]   `event` messages through a pipeline, `result` back to the sender (needs a pipeline reading the stream)
//	streamload fanout [--subs 10000] [--pubs 1] [--rate 10] [--slow 0] [flags]   one room of subscribers, publishers outside it
//	streamload storm  [--subs 1000] [--rooms 100] [--rate 1000] [--drop 0.3] [flags]   drop a share of subscribers mid-run; they re-join with since; count what was lost
//	streamload ramp   [--of echo|fanout] [--start 10000] [--factor 1.25] [--p99 10ms] [flags]   the highest rate whose p99 stays under the bound
//	streamload idle   [--conns 10000] [--rooms 100] [--hold 5s] [--pid PID]   joined, silent connections; server RSS per connection
//	streamload fairness [echo flags] [--flood 1] [--repeat 3] [--out DIR]   echo without and with a flooder, alternated; medians and ratios
//	streamload flow   --limit R [--onsets 10] [--admin HOST:PORT]   a producer that honours flow control floods: crossing → pause, in flight, resume
//	streamload stall  [--rate 2000] [--size 1024] [--onsets 7] [--rcvbuf 0]   a subscriber stops reading: stop → the room's policy applied
//
// Backpressure flags (bench/backpressure.sh): echo --flood N (flooders in
// rooms of their own, publishing as fast as the server reads), fanout
// --slow-read BYTES (slow subscribers read that many bytes per second
// instead of never) and --count (every subscriber's seqs accounted, gap
// notices included), --admin HOST:PORT (the engine's counters before and
// after); with --pid the server's RSS is sampled every second.
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
	fmt.Fprintln(os.Stderr, "usage: streamload echo|pipeline|fanout|storm|ramp|idle|fairness|flow|stall [flags]   (streamload SCENARIO -h for the flags)")
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
	case "fairness":
		os.Exit(runFairness(ctx, os.Args[2:]))
	case "flow":
		os.Exit(runFlow(ctx, os.Args[2:]))
	case "stall":
		os.Exit(runStall(ctx, os.Args[2:]))
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
			return nil, errors.New("--tls-ca and --tls-insecure need a wss:// --addr")
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
	fs.IntVar(&o.Slow, "slow", 0, "fanout: subscribers that never read (with --slow-read: that read slowly)")
	fs.Int64Var(&o.SlowRead, "slow-read", 0, "fanout: the --slow subscribers read this many `BYTES` per second (then everything once the window ends) instead of never; implies --count")
	fs.BoolVar(&o.Count, "count", false, "fanout: account for every subscriber's seqs (delivered or in a gap notice, once, in order)")
	fs.IntVar(&o.Flood, "flood", 0, "echo: flooders besides the echo clients, each publishing as fast as the server reads into a room of its own")
	fs.StringVar(&o.FloodSched, "flood-sched", "idle", "echo: the flooders' threads' scheduling: idle (SCHED_IDLE: what the measuring worker leaves), nice (nice 19) or normal")
	fs.StringVar(&o.Admin, "admin", "", "the engine's admin `HOST:PORT` (loopback): its counters before and after the run")
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
	var err error
	if o.TLS, err = parseTarget(fs, args, &o.Addr, &o.Path); err != nil {
		return fail(2, err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(1, err)
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
		return fail(1, err)
	}
	fmt.Println(res.Summary())
	if jsonPath != "" {
		if err := res.WriteJSON(jsonPath); err != nil {
			return fail(1, err)
		}
	}
	if hgrmPath != "" {
		if err := res.WriteHgrm(hgrmPath); err != nil {
			return fail(1, err)
		}
	}
	if err != nil {
		return fail(1, err)
	}
	if q := res.Seqs; q != nil && (!q.Exact() || (q.DropsMatch != nil && !*q.DropsMatch)) {
		fmt.Fprintln(os.Stderr, "streamload: --count: not every seq was accounted for, or the engine's drops differ from the members' gaps")
		return 3
	}
	if f := res.Flood; f != nil && !f.Exact {
		fmt.Fprintln(os.Stderr, "streamload: --flood: an end marker did not come back: the flood counts are not final")
		return 3
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
	var err error
	if o.TLS, err = parseTarget(fs, args, &o.Addr, &o.Path); err != nil {
		return fail(2, err)
	}
	if sources != "" {
		o.Sources = strings.Split(sources, ",")
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
		return fail(1, err)
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
	var err error
	if ro.Base.TLS, err = parseTarget(fs, args, &ro.Base.Addr, &ro.Base.Path); err != nil {
		return fail(2, err)
	}
	if sources != "" {
		ro.Base.Sources = strings.Split(sources, ",")
	}
	if ro.Base.Duration == 10*time.Second {
		ro.Base.Duration = 5 * time.Second // shorter steps unless asked
	}
	ro.Log = os.Stderr
	res, err := loadtest.Ramp(ctx, ro)
	if err != nil {
		return fail(1, err)
	}
	return report(true, func() string {
		if res.Best == nil {
			return "ramp: no step passed; stopped because " + res.Why
		}
		return fmt.Sprintf("ramp: best %.0f msgs/s with p99 %.3f ms (bound %v); stopped because %s", res.Best.Rate, res.Best.P99ms, ro.P99Bound, res.Why)
	}, res, jsonPath, nil)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fail prints err and returns code, the subcommand's exit status.
func fail(code int, err error) int {
	fmt.Fprintln(os.Stderr, "streamload:", err)
	return code
}

// addrFlags registers --addr and --path for the subcommands that speak
// to one engine outside the load scenarios' flags.
func addrFlags(fs *flag.FlagSet, addr, path *string) {
	fs.StringVar(addr, "addr", "127.0.0.1:8080", "engine WebSocket address (loopback only): HOST:PORT, ws:// or wss:// URL")
	fs.StringVar(path, "path", "/ws", "WebSocket path")
}

// parseTarget registers the TLS flags, parses args and resolves --addr
// (ws:// or wss://) into addr and path; it returns the TLS config.
func parseTarget(fs *flag.FlagSet, args []string, addr, path *string) (*tls.Config, error) {
	var tf targetFlags
	tf.register(fs)
	_ = fs.Parse(args)
	return tf.apply(addr, path)
}

// report prints a measurement's summary when there is one (measured),
// writes the result as JSON to jsonPath, and returns the exit status for
// err.
func report(measured bool, summary func() string, res any, jsonPath string, err error) int {
	if measured {
		fmt.Println(summary())
		if jsonPath != "" {
			if werr := writeJSONFile(jsonPath, res); werr != nil {
				return fail(1, werr)
			}
		}
	}
	if err != nil {
		return fail(1, err)
	}
	return 0
}

func runFairness(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("fairness", flag.ExitOnError)
	fo := loadtest.FairnessOptions{Base: loadtest.Options{Scenario: "echo"}}
	var sources, jsonPath string
	scenarioFlags(fs, &fo.Base, &sources)
	fs.IntVar(&fo.Repeat, "repeat", 3, "runs without and with the flooder(s), alternated")
	fs.DurationVar(&fo.Pause, "pause", time.Second, "pause between runs")
	fs.StringVar(&fo.OutDir, "out", "", "write each run's JSON and .hgrm (without.N, with.N) into this folder")
	fs.Float64Var(&fo.MaxLoad, "max-load", 0, "before each run, wait until the 1-minute load average is below this (0: don't)")
	fs.DurationVar(&fo.LoadWait, "load-wait", 10*time.Minute, "wait at most this long for --max-load")
	fs.StringVar(&jsonPath, "json", "", "write every run, the medians and the ratios as JSON to this file")
	var err error
	if fo.Base.TLS, err = parseTarget(fs, args, &fo.Base.Addr, &fo.Base.Path); err != nil {
		return fail(2, err)
	}
	if sources != "" {
		fo.Base.Sources = strings.Split(sources, ",")
	}
	fo.Log = os.Stderr
	res, err := loadtest.Fairness(ctx, fo)
	return report(res != nil && len(res.Runs) > 0, func() string { return res.Table() }, res, jsonPath, err)
}

func runFlow(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("flow", flag.ExitOnError)
	var o loadtest.FlowOptions
	var jsonPath string
	addrFlags(fs, &o.Addr, &o.Path)
	fs.Float64Var(&o.Limit, "limit", 0, "the engine's max_messages_per_second (required; the engine needs flow_control: true)")
	fs.IntVar(&o.Onsets, "onsets", 10, "overload onsets")
	fs.IntVar(&o.Size, "size", 64, "data bytes per message")
	fs.DurationVar(&o.Idle, "idle", 1200*time.Millisecond, "silence before each onset (the bucket refills)")
	fs.IntVar(&o.Batch, "batch", 1, "messages per write (the pause is checked between writes)")
	fs.StringVar(&o.Admin, "admin", "", "the engine's admin `HOST:PORT` (loopback): flow_pauses and rate_limited over the run")
	fs.StringVar(&jsonPath, "json", "", "write the result as JSON to this file")
	var err error
	if o.TLS, err = parseTarget(fs, args, &o.Addr, &o.Path); err != nil {
		return fail(2, err)
	}
	o.Log = os.Stderr
	res, err := loadtest.Flow(ctx, o)
	return report(res != nil, func() string { return res.Summary() }, res, jsonPath, err)
}

func runStall(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("stall", flag.ExitOnError)
	var o loadtest.StallOptions
	var jsonPath string
	addrFlags(fs, &o.Addr, &o.Path)
	fs.Float64Var(&o.Rate, "rate", 2000, "publishes per second into the room")
	fs.IntVar(&o.Size, "size", 1024, "data bytes per message")
	fs.IntVar(&o.Onsets, "onsets", 7, "stops, each in a fresh room")
	fs.DurationVar(&o.Before, "before", 300*time.Millisecond, "the subscriber reads this long before it stops")
	fs.DurationVar(&o.Stall, "stall", time.Second, "how long it does not read")
	fs.DurationVar(&o.After, "after", 200*time.Millisecond, "publishing goes on this long after it reads again")
	fs.IntVar(&o.RcvBuf, "rcvbuf", 0, "the subscriber's SO_RCVBUF in `BYTES` (0: the system's, autotuned)")
	fs.StringVar(&o.Room, "room", "load.stall", "room name prefix (the engine's drop-oldest policy must match it)")
	fs.StringVar(&o.Admin, "admin", "", "the engine's admin `HOST:PORT` (loopback): backpressure_dropped over the run")
	fs.StringVar(&jsonPath, "json", "", "write the result as JSON to this file")
	var err error
	if o.TLS, err = parseTarget(fs, args, &o.Addr, &o.Path); err != nil {
		return fail(2, err)
	}
	o.Log = os.Stderr
	res, err := loadtest.Stall(ctx, o)
	if code := report(res != nil, func() string { return res.Summary() }, res, jsonPath, err); code != 0 {
		return code
	}
	if !res.Exact || (res.Engine != nil && res.Engine.BackpressureDropped != uint64(res.Gapped)) {
		fmt.Fprintln(os.Stderr, "streamload: stall: not every seq was accounted for, or the engine's drops differ from the gaps")
		return 3
	}
	return 0
}

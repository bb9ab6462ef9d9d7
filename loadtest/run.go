package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Options configure a run. Zero fields take the defaults named.
type Options struct {
	Scenario string // "echo" or "fanout"
	Addr     string // engine address, loopback only; default 127.0.0.1:8080
	Path     string // default "/ws"
	Label    string // server name for the result; default "streamd"
	// TLS, when set, makes every connection wss:// with this client
	// config (ParseTarget and ClientTLSConfig build it from a wss:// URL).
	TLS *tls.Config

	Conns       int     // echo: connections, each in its own room; default 1,000
	Subscribers int     // fanout: members of the one room; default 10,000
	Publishers  int     // fanout: connections that publish (not members); default 1
	Slow        int     // fanout: subscribers that never read (slow consumers)
	Stream      string  // pipeline: the stream events feed; default "load"
	Rooms       int     // storm: rooms (one publisher each); default 100
	DropShare   float64 // storm: share of subscribers dropped mid-run; default 0.3

	Rate     float64       // total publishes per second; default 10,000 (echo), 10 (fanout)
	Duration time.Duration // measured window; default 10s
	Warmup   time.Duration // sent but not measured, before the window; default 2s
	Drain    time.Duration // wait for stragglers after the last send; default 2s
	Size     int           // data bytes per message; default 64
	Tick     time.Duration // send-batch granularity; default 200µs
	Burst    int           // messages each connection sends back to back, in one write, per slot; default 1
	Workers  int           // generator threads; default GOMAXPROCS

	PID      int       // server pid: report its CPU and peak RSS
	Sources  []string  // local IPs to dial from; default: 127.0.0.1, more when ports run short
	Progress io.Writer // a line per second; nil: none
}

func (o *Options) defaults() error {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("loadtest: --addr %q: %v", o.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("loadtest: --addr %q is not a loopback address: load goes to 127.0.0.0/8 or ::1 only", o.Addr)
	}
	if o.Path == "" {
		o.Path = "/ws"
	}
	if o.Label == "" {
		o.Label = "streamd"
	}
	switch o.Scenario {
	case "echo", "pipeline":
		if o.Conns == 0 {
			o.Conns = 1000
		}
		if o.Scenario == "pipeline" && o.Stream == "" {
			o.Stream = "load"
		}
		if o.Rate == 0 {
			o.Rate = 10_000
		}
	case "fanout":
		if o.Subscribers == 0 {
			o.Subscribers = 10_000
		}
		if o.Publishers == 0 {
			o.Publishers = 1
		}
		if o.Rate == 0 {
			o.Rate = 10
		}
		if o.Slow >= o.Subscribers {
			return fmt.Errorf("loadtest: --slow %d must be below --subs %d", o.Slow, o.Subscribers)
		}
		o.Conns = o.Subscribers + o.Publishers
	case "storm":
		if o.Subscribers == 0 {
			o.Subscribers = 1000
		}
		if o.Rooms == 0 {
			o.Rooms = 100
		}
		if o.Rate == 0 {
			o.Rate = 1000
		}
		if o.DropShare == 0 {
			o.DropShare = 0.3
		}
		if o.DropShare < 0 || o.DropShare > 1 {
			return fmt.Errorf("loadtest: --drop %v: want a share in (0, 1]", o.DropShare)
		}
		o.Publishers = o.Rooms
		o.Conns = o.Subscribers + o.Rooms
	default:
		return fmt.Errorf("loadtest: unknown scenario %q (echo, pipeline, fanout, storm)", o.Scenario)
	}
	if o.Rate <= 0 || o.Rate > 5e6 {
		return fmt.Errorf("loadtest: --rate %v: want 0 < rate ≤ 5,000,000", o.Rate)
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Duration > 30*time.Minute {
		return fmt.Errorf("loadtest: --duration %v: at most 30m", o.Duration)
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 2 * time.Second
	}
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Burst == 0 {
		o.Burst = 1
	}
	if o.Burst < 1 || o.Burst > 1000 {
		return fmt.Errorf("loadtest: --burst %d: want 1..1000", o.Burst)
	}
	if o.Tick == 0 {
		o.Tick = 200 * time.Microsecond
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if len(o.Sources) == 0 {
		// About 28,000 ephemeral ports per source address.
		n := o.Conns/25_000 + 1
		if host != "127.0.0.1" {
			n = 1
		}
		for i := 1; i <= n; i++ {
			o.Sources = append(o.Sources, "127.0.0."+strconv.Itoa(i))
		}
	}
	return nil
}

// Run executes one scenario and returns what it measured.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	_, _ = RaiseFileLimit()
	workers := make([]*worker, o.Workers)
	for i := range workers {
		w, err := newWorker(o.Tick)
		if err != nil {
			return nil, err
		}
		defer w.close()
		workers[i] = w
	}
	res := &Result{Scenario: o.Scenario, Server: o.Label, Conns: o.Conns, Rate: o.Rate, DurationS: o.Duration.Seconds(), Burst: o.Burst}
	fan := int64(1)
	switch o.Scenario {
	case "fanout":
		res.Subscribers, res.Publishers = o.Subscribers, o.Publishers
		fan = int64(o.Subscribers - o.Slow)
	case "storm":
		res.Subscribers, res.Publishers = o.Subscribers, o.Publishers
		fan = int64(o.Subscribers / o.Rooms)
		for _, w := range workers {
			w.trackSeq = true
			w.incoming = make(chan *lconn, o.Conns)
			w.dropped = make(chan *lconn, o.Conns)
		}
	}

	// Connect everyone, 64 at a time.
	type job struct {
		i      int
		room   string // joined
		target string // published to
		pub    bool   // sends
		sub    bool   // reads (a member)
	}
	jobs := make([]job, 0, o.Conns)
	switch o.Scenario {
	case "echo":
		for i := 0; i < o.Conns; i++ {
			room := "load.echo." + strconv.Itoa(i)
			jobs = append(jobs, job{i: i, room: room, target: room, pub: true, sub: true})
		}
	case "pipeline":
		for i := 0; i < o.Conns; i++ {
			jobs = append(jobs, job{i: i, pub: true, sub: true})
		}
	case "fanout":
		for i := 0; i < o.Subscribers; i++ {
			jobs = append(jobs, job{i: i, room: "load.fanout", sub: true})
		}
		for i := 0; i < o.Publishers; i++ {
			jobs = append(jobs, job{i: o.Subscribers + i, pub: true, target: "load.fanout"})
		}
	case "storm":
		for i := 0; i < o.Subscribers; i++ {
			jobs = append(jobs, job{i: i, room: "load.storm." + strconv.Itoa(i%o.Rooms), sub: true})
		}
		for r := 0; r < o.Rooms; r++ {
			jobs = append(jobs, job{i: o.Subscribers + r, pub: true, target: "load.storm." + strconv.Itoa(r)})
		}
	}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(j job) {
			defer wg.Done()
			defer func() { <-sem }()
			room := j.room
			c, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, source: o.Sources[j.i%len(o.Sources)], room: room, since: -1, timeout: 15 * time.Second, tls: o.TLS})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.ConnectFailures++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			switch {
			case o.Scenario == "pipeline":
				c.frame, c.tOff = buildEvent(o.Stream, o.Size)
			case j.pub:
				c.frame, c.tOff = buildPublish(j.target, o.Size)
				c.room = j.target
			}
			if j.sub {
				c.room, c.sub = j.room, true
			}
			c.silent = o.Scenario == "fanout" && j.sub && j.i < o.Slow
			w := workers[j.i%len(workers)]
			if err := w.add(c); err != nil && firstErr == nil {
				firstErr = err
			}
			if j.pub {
				w.senders = append(w.senders, c)
			}
		}(j)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if res.ConnectFailures > 0 {
		return nil, fmt.Errorf("loadtest: %d of %d connections failed; first: %w", res.ConnectFailures, o.Conns, firstErr)
	}

	// The schedule: each worker sends its share of the rate, phases spread.
	nw := int64(len(workers))
	interval := int64(float64(time.Second) * float64(nw) * float64(o.Burst) / o.Rate)
	if interval < 1 {
		interval = 1
	}
	start := now() + int64(100*time.Millisecond)
	warmEnd := start + int64(o.Warmup)
	stopAt := warmEnd + int64(o.Duration)
	for i, w := range workers {
		if len(w.senders) > 0 {
			w.interval = interval
		}
		w.t0 = start + int64(i)*interval/nw
		w.burst = o.Burst
		w.warmEnd, w.stopAt = warmEnd, stopAt
	}
	expected := func() int64 {
		var s int64
		for _, w := range workers {
			s += w.sentMeasured.Load()
		}
		return s * fan
	}
	received := func() int64 {
		var s int64
		for _, w := range workers {
			s += w.recvMeasured.Load()
		}
		return s
	}

	var runWG sync.WaitGroup
	until := stopAt + int64(o.Drain)
	for _, w := range workers {
		runWG.Add(1)
		go func(w *worker) { defer runWG.Done(); w.run(until) }(w)
	}
	done := make(chan struct{})
	go func() { runWG.Wait(); close(done) }()

	// Measure CPU over the window; print progress; stop early once the
	// drain has everything.
	var cpu0, srv0 time.Duration
	var wall0 int64
	measuring, stormed := false, false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSent, lastRecv := int64(0), int64(0)
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-ctx.Done():
			for _, w := range workers {
				w.quit.Store(true)
			}
			<-done
			return nil, ctx.Err()
		case <-tick.C:
			t := now()
			if !measuring && t >= warmEnd {
				measuring = true
				cpu0, wall0 = selfCPU(), t
				if o.PID > 0 {
					srv0, _ = ProcessCPU(o.PID)
				}
			}
			if o.Scenario == "storm" && !stormed && t >= warmEnd+int64(o.Duration)/3 {
				stormed = true
				go storm(ctx, o, workers, res)
			}
			if measuring && res.GenCPUCores == 0 && t >= stopAt {
				res.GenCPUCores = float64(selfCPU()-cpu0) / float64(t-wall0)
				if o.PID > 0 {
					s1, _ := ProcessCPU(o.PID)
					res.ServerCPUs = (s1 - srv0).Seconds()
				}
			}
			var sent, recv, p99 int64
			for _, w := range workers {
				sent += w.sent.Load()
				recv += w.recv.Load()
				p99 = max(p99, w.p99Last.Load())
			}
			if o.Progress != nil {
				phase := "warmup"
				switch {
				case t >= stopAt:
					phase = "drain"
				case t >= warmEnd:
					phase = "measure"
				}
				fmt.Fprintf(o.Progress, "%-7s t=%5.1fs sent %8d/s recv %9d/s p99 %.2f ms\n",
					phase, float64(t-start)/1e9, sent-lastSent, recv-lastRecv, float64(p99)/1000)
			}
			lastSent, lastRecv = sent, recv
			if t >= stopAt && received() >= expected() {
				for _, w := range workers {
					w.quit.Store(true)
				}
			}
		}
	}
	if res.GenCPUCores == 0 { // very short run: measure over what we have
		t := now()
		res.GenCPUCores = float64(selfCPU()-cpu0) / float64(max(t-wall0, 1))
	}
	h := newHistogram()
	for _, w := range workers {
		h.Merge(w.hist)
		res.Sent += w.sentMeasured.Load()
		res.LateSends += w.late.Load()
	}
	res.Expected = expected()
	res.Received = received()
	res.Lost = max(res.Expected-res.Received, 0)
	if o.Scenario == "storm" {
		stormVerdict(o, workers, res)
	}
	res.ThroughputPerS = float64(res.Received) / o.Duration.Seconds()
	for _, w := range workers {
		res.ErrorAnswers += w.errorAnswers.Load()
		if e := w.firstError.Load(); e != nil && res.FirstError == "" {
			res.FirstError = *e
		}
	}
	res.fill(h)
	if o.PID > 0 {
		res.ServerPeakRSS, _ = ProcessPeakRSSKiB(o.PID)
	}
	var total int64
	for _, w := range workers {
		total += w.sent.Load()
	}
	switch {
	case total > 0 && float64(res.LateSends)/float64(total) > 0.01:
		res.GenLimited, res.GenLimitedWhy = true, fmt.Sprintf("%.1f%% of sends more than 1 ms late", 100*float64(res.LateSends)/float64(total))
	case res.GenCPUCores > 0.9*float64(len(workers)):
		res.GenLimited, res.GenLimitedWhy = true, fmt.Sprintf("generator used %.2f of %d cores", res.GenCPUCores, len(workers))
	}
	if res.Sent == 0 {
		return res, errors.New("loadtest: nothing was sent in the measured window")
	}
	return res, nil
}

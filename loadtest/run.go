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

	"golang.org/x/sys/unix"
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
	SlowRead    int64   // fanout: the Slow subscribers read this many bytes per second instead of never (until the window ends, then at once)
	Count       bool    // fanout: account for every subscriber's seqs, gap notices included (SeqReport); on with SlowRead
	Flood       int     // echo: flooders besides the echo clients (flood.go): each publishes as fast as the server reads, in its own room
	FloodSched  string  // echo: the flooders' threads' scheduling: "idle" (default, SCHED_IDLE: they use what the measuring worker leaves), "nice" (nice 19) or "normal"
	Admin       string  // the engine's admin HOST:PORT (loopback): its counters before and after, in Result.Engine
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
		if o.SlowRead < 0 || (o.SlowRead > 0 && o.SlowRead < 1024) {
			return fmt.Errorf("loadtest: --slow-read %d: want at least 1024 bytes/s (0: slow subscribers never read)", o.SlowRead)
		}
		if o.SlowRead > 0 {
			o.Count = true
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
	if o.Scenario != "fanout" && (o.SlowRead != 0 || o.Count) {
		return errors.New("loadtest: --slow-read and --count apply to fanout")
	}
	if o.Flood < 0 || o.Flood > 64 || (o.Flood > 0 && o.Scenario != "echo") {
		return fmt.Errorf("loadtest: --flood %d: want 0..64 flooders, with echo", o.Flood)
	}
	switch o.FloodSched {
	case "":
		o.FloodSched = "idle"
	case "idle", "nice", "normal":
	default:
		return fmt.Errorf("loadtest: --flood-sched %q: want idle, nice or normal", o.FloodSched)
	}
	if o.Admin != "" {
		if err := checkLoopback("--admin", o.Admin); err != nil {
			return err
		}
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
	res.LoadAvg1m, _ = LoadAverage()
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
			slow := o.Scenario == "fanout" && j.sub && j.i < o.Slow
			c.silent = slow && o.SlowRead == 0
			if slow && o.SlowRead > 0 {
				c.readRate = o.SlowRead
			}
			if o.Count && j.sub && !c.silent {
				if c.joinSeq < 0 {
					if firstErr == nil {
						firstErr = errors.New("loadtest: --count: the joined answer carried no seq")
					}
					res.ConnectFailures++
				}
				c.acct = &seqAcct{base: c.joinSeq, covered: c.joinSeq}
			}
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
	var flooders []*flooder
	for i := 0; i < o.Flood; i++ {
		room := "load.flood." + strconv.Itoa(i)
		c, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, source: o.Sources[i%len(o.Sources)], room: room, since: -1, timeout: 15 * time.Second, tls: o.TLS})
		if err != nil {
			return nil, fmt.Errorf("loadtest: flooder: %w", err)
		}
		f := newFlooder(c, room, o.Size)
		defer unix.Close(f.fd)
		flooders = append(flooders, f)
	}
	if len(flooders) > 0 {
		// Flooders run on threads of their own: Ps for them, so that the
		// measuring worker never waits for a P behind a flooder.
		prev := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(prev + 2*len(flooders))
		defer runtime.GOMAXPROCS(prev)
	}
	engine, err := engineDelta(ctx, o.Admin)
	if err != nil {
		return nil, err
	}

	// The schedule: each worker that has senders sends its share of the
	// rate (fewer publishers than workers: only theirs), phases spread.
	nw := int64(0)
	for _, w := range workers {
		if len(w.senders) > 0 {
			nw++
		}
	}
	nw = max(nw, 1)
	interval := int64(float64(time.Second) * float64(nw) * float64(o.Burst) / o.Rate)
	if interval < 1 {
		interval = 1
	}
	start := now() + int64(100*time.Millisecond)
	warmEnd := start + int64(o.Warmup)
	stopAt := warmEnd + int64(o.Duration)
	phase := int64(0)
	for _, w := range workers {
		w.t0 = start
		if len(w.senders) > 0 {
			w.interval = interval
			w.t0 = start + phase*interval/nw
			phase++
		}
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
	var floodWG, floodReadWG sync.WaitGroup
	for _, f := range flooders {
		floodWG.Add(1)
		floodReadWG.Add(1)
		go func(f *flooder) { defer floodWG.Done(); f.flood(start, stopAt, o.FloodSched) }(f)
		go func(f *flooder) { defer floodReadWG.Done(); f.read() }(f)
	}
	stopFlood := func() {
		for _, f := range flooders {
			f.quit.Store(true)
		}
		floodWG.Wait()
		floodReadWG.Wait()
	}
	defer stopFlood()
	published := func() int64 {
		var s int64
		for _, w := range workers {
			s += w.sent.Load()
		}
		return s
	}
	acctSettled := func() bool {
		for _, w := range workers {
			if w.acctPending.Load() != 0 {
				return false
			}
		}
		return true
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
			if o.PID > 0 {
				if kib, err := ProcessRSSKiB(o.PID); err == nil {
					smp := RSSSample{T: float64(t-warmEnd) / 1e9, KiB: kib}
					if o.Admin != "" {
						if heap, err := ReadEngineHeap(ctx, o.Admin); err == nil {
							smp.HeapKiB = heap >> 10
						}
					}
					res.ServerRSS = append(res.ServerRSS, smp)
				}
			}
			if o.Count && t >= stopAt {
				p := published()
				for _, w := range workers {
					w.acctTarget.Store(p)
				}
			}
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
			if measuring && res.GenCPUCores == 0 && t >= stopAt && t > wall0 {
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
			if t >= stopAt && received() >= expected() && (!o.Count || acctSettled()) {
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
	if o.Count {
		res.Seqs = seqReport(workers)
	}
	if len(flooders) > 0 {
		floodWG.Wait()
		// The end markers: once each is back, every flood message was
		// accepted (echoed) or dropped by the rate limit.
		wait := time.Duration(stopAt + int64(1100*time.Millisecond) - now())
		for _, f := range flooders {
			go f.finish(max(wait, 0))
		}
		deadline := time.Now().Add(wait + 5*time.Second)
		for time.Now().Before(deadline) {
			back := true
			for _, f := range flooders {
				back = back && f.markerBack.Load()
			}
			if back {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		stopFlood()
		res.Flood = floodResult(flooders)
	}
	if res.Engine, err = engine(); err != nil {
		return res, err
	}
	if d, q := res.Engine, res.Seqs; d != nil && q != nil {
		match := d.BackpressureDropped == uint64(q.Fast.Gapped+q.Slow.Gapped) && d.GapNotices == uint64(q.Fast.GapNotices+q.Slow.GapNotices)
		q.EngineDropped, q.EngineGapNotices, q.DropsMatch = &d.BackpressureDropped, &d.GapNotices, &match
	}
	if o.PID > 0 {
		res.RSS = summarizeRSS(res.ServerRSS, o.Duration.Seconds(), 50)
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

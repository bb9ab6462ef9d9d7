package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"streamd/alerts"
	"streamd/netpoll"
	"streamd/protocol"
	"streamd/ring"
	"streamd/state"
)

// Engine is a running streamd: WebSocket loops, shard workers and rooms.
// Its exported methods are safe from any goroutine.
type Engine struct {
	cfg    Config
	inline bool
	full   bool // Metrics == MetricsFull: measure stage latencies
	srv    *netpoll.Server
	shards []*shard
	loops  []atomic.Pointer[loopState] // by loop index, set on first connection

	rooms     sync.Map // name → *room
	roomCount atomic.Int64
	roomsMu   sync.Mutex // serialises room creation only
	seed      maphash.Seed

	nextSession atomic.Uint64

	auth  *authenticator // token verification (auth.go)
	perms []*permRule    // compiled Config.Permissions (permissions.go)

	execs    []*pipeExec                // pipeline executors, fixed at New
	streams  atomic.Pointer[streamsMap] // stream → pipelines reading it
	pipesMu  sync.Mutex                 // guards pipes
	pipes    map[string]*pipeRT         // running pipelines by name
	reloadMu sync.Mutex                 // serialises Start/Reload/Close of pipelines

	presenceNotices atomic.Uint64 // presence notices broadcast (a batch counts once)

	started  time.Time
	snapshot atomic.Pointer[MetricsSnapshot] // the latest, for Metrics()

	tls *tlsState // nil without Config.TLS

	alerter    *alerts.Evaluator // nil without Config.Alerts
	alertHooks []*alerts.Webhook

	store           *state.Store // nil without durable rooms
	roomLog         *state.Log
	durableFailures atomic.Uint64
	duplicates      atomic.Uint64 // exactly-once publishes refused as resends
	bpRooms         []*bpPolicy   // by cfg.Rooms index (backpressure.go)
	ckCommits       atomic.Uint64 // pipeline checkpoints committed
	ckFailures      atomic.Uint64 // pipeline checkpoints that failed (taken or committed)

	state    atomic.Int32 // 0 new, 1 started, 2 closed
	closing  atomic.Bool  // Close began: waits on full rings give up
	stop     chan struct{}
	bpKick   chan struct{} // a loop has a first waiter for backpressureTicker (buffered, 1)
	workerWG sync.WaitGroup
}

// Engine states.
const (
	stateNew int32 = iota
	stateStarted
	stateClosed
)

// New checks cfg and builds an engine; Start makes it listen.
func New(cfg Config) (*Engine, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, inline: cfg.Mode == ModeInline, full: cfg.Metrics == MetricsFull, seed: maphash.MakeSeed(), stop: make(chan struct{}), bpKick: make(chan struct{}, 1), started: time.Now()}
	nShards := max(cfg.Workers, 1)
	for i := range cfg.Rooms {
		e.bpRooms = append(e.bpRooms, e.cfg.bpPolicyOf(&e.cfg.Rooms[i]))
	}
	e.loops = make([]atomic.Pointer[loopState], cfg.Loops)
	for i := 0; i < nShards; i++ {
		sh := &shard{e: e, index: i, wake: make([]bool, cfg.Loops)}
		for l := 0; l < cfg.Loops; l++ {
			sh.toLoop = append(sh.toLoop, ring.New[out](cfg.RingSize))
			if !e.inline {
				sh.in = append(sh.in, ring.New[command](cfg.RingSize))
			}
		}
		if !e.inline {
			sh.worker = &worker{sh: sh, wakeCh: make(chan struct{}, 1)}
		}
		e.shards = append(e.shards, sh)
	}
	for i := 0; i < cfg.PipelineWorkers; i++ {
		e.execs = append(e.execs, newPipeExec(e, i))
	}
	empty := streamsMap{}
	e.streams.Store(&empty)
	auth, err := newAuthenticator(&e.cfg.Auth, func(msg string, args ...any) { e.cfg.Logger.Warn(msg, args...) })
	if err != nil {
		return nil, err
	}
	e.auth = auth
	e.perms, _ = compilePermissions(cfg.Permissions) // Validate reported their errors
	opts := cfg.netpollOptions()
	if cfg.TLS.Enabled() {
		if err := e.setupTLS(&opts); err != nil {
			return nil, err
		}
	}
	srv, err := netpoll.NewServer(opts, e)
	if err != nil {
		return nil, err
	}
	e.srv = srv
	return e, nil
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Start listens and starts the loops and workers.
func (e *Engine) Start() error {
	if !e.state.CompareAndSwap(stateNew, stateStarted) {
		return errors.New("engine: Start called twice or after Close")
	}
	for i, sh := range e.shards {
		if sh.worker != nil {
			e.workerWG.Add(1)
			go sh.worker.run(e.cfg.Loops + i)
		}
	}
	for i, x := range e.execs {
		e.workerWG.Add(1)
		go x.run(e.cfg.Loops + len(e.shards) + i)
	}
	if e.tls != nil && e.cfg.TLS.ReloadInterval > 0 {
		e.workerWG.Add(1)
		go e.every(e.cfg.TLS.ReloadInterval, e.pollTLS)
	}
	if e.cfg.anyPresence() {
		e.workerWG.Add(1)
		go e.every(e.presenceTick(), e.firePresenceTimers)
	}
	e.workerWG.Add(1)
	go e.every(authTick, e.checkDeadlines)
	e.workerWG.Add(1)
	go e.backpressureTicker()
	if j := e.auth.jwks; j != nil {
		e.workerWG.Add(1)
		go j.run(e.stop, e.cfg.Auth.JWT.JWKSRefresh, e.workerWG.Done)
	}
	fail := func(err error) error {
		close(e.stop)
		e.workerWG.Wait()
		e.closeAlerts()
		e.state.Store(stateClosed)
		return err
	}
	if err := e.openState(); err != nil {
		return fail(err)
	}
	if err := e.startAlerts(); err != nil {
		e.closeState()
		return fail(err)
	}
	if e.cfg.MetricsInterval > 0 {
		var sp sampler
		e.workerWG.Add(1)
		go e.every(e.cfg.MetricsInterval, func() { e.publishSnapshot(&sp) })
	}
	if len(e.cfg.Pipelines) > 0 {
		e.reloadMu.Lock()
		err := e.applyPipelines(e.cfg.Pipelines)
		e.reloadMu.Unlock()
		if err != nil {
			return fail(err)
		}
	}
	if err := e.srv.Start(); err != nil {
		e.stopPipelines()
		return fail(err)
	}
	return nil
}

// Addr returns the bound WebSocket address (after Start).
func (e *Engine) Addr() net.Addr { return e.srv.Addr() }

// Close sends close 1001 to every client, waits up to ctx for them to
// leave, and stops the loops and workers.
func (e *Engine) Close(ctx context.Context) error {
	if !e.state.CompareAndSwap(stateStarted, stateClosed) {
		e.state.Store(stateClosed)
		return nil
	}
	e.closing.Store(true)
	err := e.srv.Shutdown(ctx)
	// Pipelines stop after the clients left (no new events) and before
	// the shards (their held events are flushed into rooms and logs).
	e.stopPipelines()
	close(e.stop)
	for _, sh := range e.shards {
		if sh.worker != nil {
			sh.worker.notify()
		}
	}
	for _, x := range e.execs {
		x.notify()
	}
	e.workerWG.Wait()
	e.closeAlerts()
	e.closeState()
	return err
}

// every calls fn every d on its own goroutine until the engine stops
// (the metrics snapshot, the presence timers, the log retention). The
// caller has done workerWG.Add(1).
func (e *Engine) every(d time.Duration, fn func()) {
	defer e.workerWG.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// yield waits a little for a full ring to drain.
func (e *Engine) yield() { runtime.Gosched() }

// room returns the room called name, creating it (and checking MaxRooms).
func (e *Engine) room(name string) (*room, error) {
	if r, ok := e.rooms.Load(name); ok {
		return r.(*room), nil
	}
	e.roomsMu.Lock()
	defer e.roomsMu.Unlock()
	if r, ok := e.rooms.Load(name); ok {
		return r.(*room), nil
	}
	if e.roomCount.Load() >= int64(e.cfg.MaxRooms) {
		return nil, &protocol.Error{Code: CodeTooManyRooms, Message: "the engine holds max_rooms rooms already"}
	}
	r := &room{
		name:      name,
		nameB:     []byte(name),
		shard:     e.shards[maphash.String(e.seed, name)%uint64(len(e.shards))],
		loopCount: make([]int32, e.cfg.Loops),
		views:     make([]*roomView, e.cfg.Loops),
	}
	r.hist.capacity = e.cfg.historyFor(name)
	r.bp = e.backpressureFor(name)
	r.perm = e.ruleFor(name)
	if e.cfg.presenceFor(name) {
		r.presence = newPresence(r)
	}
	if durable, _ := e.cfg.durableFor(name); durable {
		r.durable = true
		if err := e.recoverRoom(r); err != nil {
			return nil, err
		}
	}
	e.rooms.Store(name, r)
	e.roomCount.Add(1)
	return r, nil
}

// Publish sends data (one JSON value) to every member of room and returns
// its seq. Safe from any goroutine.
func (e *Engine) Publish(roomName string, data []byte) (uint64, error) {
	if e.state.Load() == stateClosed {
		return 0, errors.New("engine: Publish after Close")
	}
	if !json.Valid(data) {
		return 0, errors.New("engine: Publish data is not one valid JSON value")
	}
	return e.publishJSON(roomName, data, e.now())
}

// publishJSON publishes data, known to be one JSON value, into the room
// called roomName (validated, created if needed) through its shard, and
// returns the seq it got: the one path of Publish, the pipelines' room
// output and the system rooms. t0 is the latency stamp (0: none).
func (e *Engine) publishJSON(roomName string, data []byte, t0 int64) (uint64, error) {
	return e.publishJSONFrom(roomName, data, t0, "", 0)
}

// publishJSONFrom is publishJSON for an exactly-once producer: a publish
// whose pseq the room already applied from producer is not applied again.
func (e *Engine) publishJSONFrom(roomName string, data []byte, t0 int64, producer string, pseq uint64) (uint64, error) {
	if err := protocol.ValidRoomName([]byte(roomName), e.cfg.MaxRoomName); err != nil {
		return 0, fmt.Errorf("engine: room %q: %w", roomName, err)
	}
	r, err := e.room(roomName)
	if err != nil {
		return 0, err
	}
	sh := r.shard
	sh.mu.Lock()
	m := newMessage(encJSON, data, nil)
	m.t0 = t0
	m.producer, m.pseq = producer, pseq
	sh.publish(exec{}, r, m, nil)
	seq := r.seq
	sh.flushWakes()
	sh.mu.Unlock()
	return seq, nil
}

// Subscribe calls fn with every message published to room from now on,
// in seq order, and returns a function that stops it. fn runs on the room's
// shard goroutine while it holds the shard: it must return quickly and must
// not call Publish or Subscribe (hand such work to another goroutine). The
// *Message is valid only during the call.
func (e *Engine) Subscribe(roomName string, fn func(m *Message)) (cancel func(), err error) {
	if fn == nil {
		return nil, errors.New("engine: Subscribe with a nil func")
	}
	if err := protocol.ValidRoomName([]byte(roomName), e.cfg.MaxRoomName); err != nil {
		return nil, fmt.Errorf("engine: room %q: %w", roomName, err)
	}
	r, err := e.room(roomName)
	if err != nil {
		return nil, err
	}
	sub := &subscription{fn: fn}
	r.shard.mu.Lock()
	r.subs = append(r.subs, sub)
	r.shard.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.shard.mu.Lock()
			defer r.shard.mu.Unlock()
			for i, s := range r.subs {
				if s == sub {
					r.subs = append(r.subs[:i], r.subs[i+1:]...)
					break
				}
			}
		})
	}, nil
}

// worker runs one shard in ModeRings.
type worker struct {
	sh       *shard
	sleeping atomic.Bool
	wakeCh   chan struct{}
}

// notify wakes the worker if it parked. Safe from any goroutine. A producer
// publishes its item before calling notify and the worker re-checks its
// rings after raising sleeping, so no wake-up is lost.
func (w *worker) notify() {
	if w.sleeping.Load() {
		select {
		case w.wakeCh <- struct{}{}:
		default:
		}
	}
}

const workerBatch = 256

func (w *worker) run(cpu int) {
	defer w.sh.e.workerWG.Done()
	if !w.sh.e.cfg.DisablePin {
		runtime.LockOSThread()
		netpoll.PinThread(cpu)
	}
	sh := w.sh
	idle := 0
	for {
		n := 0
		sh.mu.Lock()
		var x exec
		for _, in := range sh.in {
			for k := 0; k < workerBatch; k++ {
				c := in.Peek()
				if c == nil {
					break
				}
				cmd := *c
				in.Release()
				if cmd.t != 0 {
					if x.now == 0 { // one clock read per batch, none when idle
						x.now = netpoll.MonoNow()
					}
					sh.metrics.ring.Record(x.now - cmd.t)
				}
				sh.handle(x, &cmd)
				n++
			}
		}
		sh.flushWakes()
		if n > 0 && sh.batcher != nil {
			sh.batcher.Flush() // commit this batch's durable appends now (one fsync)
		}
		sh.mu.Unlock()
		if n > 0 {
			idle = 0
			continue
		}
		select {
		case <-sh.e.stop:
			return
		default:
		}
		idle++
		switch {
		case idle < 50:
			continue // spin: work usually comes in bursts
		case idle < 100:
			runtime.Gosched()
			continue
		}
		w.sleeping.Store(true)
		if w.pending() {
			w.sleeping.Store(false)
			continue
		}
		select {
		case <-w.wakeCh:
		case <-sh.e.stop:
		case <-time.After(time.Second): // belt and braces
		}
		w.sleeping.Store(false)
		idle = 0
	}
}

func (w *worker) pending() bool {
	for _, in := range w.sh.in {
		if in.Len() > 0 {
			return true
		}
	}
	return false
}

// counters are the engine's own totals (connection counts live in
// netpoll). Each loop and each shard keeps its own, written only by its
// owner (so no cache line bounces between cores per message) and summed by
// Stats; the padding keeps neighbours' counters off the line.
type counters struct {
	received  atomic.Uint64
	published atomic.Uint64
	delivered atomic.Uint64
	errors    atomic.Uint64
	events    atomic.Uint64 // `event` messages handed to pipelines
	results   atomic.Uint64 // pipeline results written

	bpDropped     atomic.Uint64 // messages a lagging member did not get (backpressure.go)
	bpDisconnects atomic.Uint64 // members closed by the disconnect policy
	bpGaps        atomic.Uint64 // gap notices sent
	flowPauses    atomic.Uint64 // flow pauses sent to producers
	heldEvents    atomic.Uint64 // events that waited for a full pipeline queue (reading paused)
	rateBlocked   atomic.Uint64 // messages that waited for their rate limit (reading paused)
	_             [128 - 96]byte
}

func (c *counters) addTo(s *Stats) {
	s.Received += c.received.Load()
	s.Published += c.published.Load()
	s.Delivered += c.delivered.Load()
	s.Errors += c.errors.Load()
	s.Events += c.events.Load()
	s.Results += c.results.Load()
	s.BackpressureDropped += c.bpDropped.Load()
	s.BackpressureDisconnects += c.bpDisconnects.Load()
	s.GapNotices += c.bpGaps.Load()
	s.FlowPauses += c.flowPauses.Load()
	s.HeldEvents += c.heldEvents.Load()
	s.RateBlocked += c.rateBlocked.Load()
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Connections       int64  `json:"connections"`
	Accepted          int64  `json:"accepted"`
	Rejected          int64  `json:"rejected"`
	Rooms             int64  `json:"rooms"`
	Received          uint64 `json:"received"`
	Published         uint64 `json:"published"`
	Delivered         uint64 `json:"delivered"`
	Errors            uint64 `json:"errors"`
	Events            uint64 `json:"events"`           // `event` messages handed to pipelines
	Results           uint64 `json:"results"`          // pipeline results sent to clients
	PresenceNotices   uint64 `json:"presence_notices"` // presence notices broadcast to a room (a batch counts once)
	ProtocolErrors    int64  `json:"protocol_errors"`
	SlowConsumerDrops int64  `json:"slow_consumer_drops"`
	// BackpressureDropped counts room messages lagging members did not get
	// (their policy dropped or conflated them); GapNotices the gap notices
	// that told them; BackpressureDisconnects the members the disconnect
	// policy closed (docs/backpressure.md).
	BackpressureDropped     uint64 `json:"backpressure_dropped"`
	BackpressureDisconnects uint64 `json:"backpressure_disconnects"`
	GapNotices              uint64 `json:"gap_notices"`
	// FlowPauses counts {"type":"flow","state":"pause"} sent to producers.
	FlowPauses uint64 `json:"flow_pauses"`
	// HeldEvents counts events that found their pipeline's queue full and
	// paused their producer's reading until it had room (input overflow:
	// block).
	HeldEvents uint64 `json:"held_events"`
	// RateBlocked counts messages over their connection's rate limit that
	// waited for tokens, its reading paused (rate_limit_overflow: block).
	RateBlocked       uint64 `json:"rate_blocked"`
	IdleTimeouts      int64  `json:"idle_timeouts"`
	HandshakeFailures int64  `json:"handshake_failures"`
	Forbidden         uint64 `json:"forbidden"`     // actions denied by permissions (forbidden answers)
	AuthFailures      uint64 `json:"auth_failures"` // tokens refused, auth timeouts, expiries, messages before auth
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (e *Engine) Stats() Stats {
	ns := e.srv.Stats()
	st := Stats{
		PresenceNotices: e.presenceNotices.Load(),
		Connections:     ns.Open.Load(), Accepted: ns.Accepted.Load(), Rejected: ns.Rejected.Load(),
		Rooms:          e.roomCount.Load(),
		ProtocolErrors: ns.ProtocolErrors.Load(), SlowConsumerDrops: ns.SlowConsumerDrops.Load(),
		IdleTimeouts: ns.IdleTimeouts.Load(), HandshakeFailures: ns.HandshakeFailures.Load() + ns.HandshakeTimeouts.Load(),
	}
	for i := range e.loops {
		if ls := e.loops[i].Load(); ls != nil {
			ls.counters.addTo(&st)
			for k := range ls.metrics.forbidden {
				st.Forbidden += ls.metrics.forbidden[k].Load()
			}
			for k := range ls.metrics.authFail {
				st.AuthFailures += ls.metrics.authFail[k].Load()
			}
		}
	}
	for _, sh := range e.shards {
		sh.counters.addTo(&st)
	}
	return st
}

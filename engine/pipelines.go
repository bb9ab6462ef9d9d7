package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"streamd/netpoll"
	"streamd/operators"
	"streamd/pipeline"
	"streamd/protocol"
	"streamd/ring"
)

// Config pipelines run on pipeline executors: PipelineWorkers goroutines,
// fixed at New, each owning the flows of the pipelines hashed to it. A
// loop hands an `event` to an executor through an SPSC ring (one per loop
// and executor, like the shards'); an executor answers `result`s through
// rings to the loops. Other producers (inputs, /ingest, Engine.Ingest)
// use the executor's bounded channel. Reload swaps a pipeline's graph on
// its executor, keeping the operators whose definition did not change.

// pipeIn is one event on its way to a pipeline.
type pipeIn struct {
	rt       *pipeRT
	ev       pipeline.Event
	producer string // exactly-once: the event's producer and pseq ("" when none)
	pseq     uint64
}

// pipeRT is one named pipeline at run time. It outlives reloads that keep
// its name; its fields after exec are owned by the executor's goroutine,
// except retired.
type pipeRT struct {
	name    string
	stream  string
	streamB []byte
	exec    *pipeExec
	flow    *operators.Flow
	p       *pipeline.Pipeline
	input   *inputRunner // generator, file or stdin feeder; nil for streams
	dropNew atomic.Bool  // input overflow: drop-newest (else block)
	// overflowed counts the events drop-newest dropped.
	overflowed atomic.Uint64
	ck         *ckRT       // checkpointing (checkpoint.go); nil when off
	retired    atomic.Bool // dropped by a reload or Close: its events are discarded
	dropped    atomic.Uint64
}

// pipeExec runs pipelines' flows on one goroutine.
type pipeExec struct {
	e        *Engine
	index    int
	in       []*ring.SPSC[pipeIn] // from loop l
	ext      chan pipeIn          // from other goroutines
	ctl      chan func()          // run on the executor (reload, close)
	toLoop   []*ring.SPSC[out]
	wake     []bool
	sleeping atomic.Bool
	wakeCh   chan struct{}
	done     chan struct{}

	pipes []*pipeRT // executor goroutine only
	batch []pipeline.Event
	one   [1]pipeline.Event
}

func newPipeExec(e *Engine, index int) *pipeExec {
	x := &pipeExec{
		e: e, index: index,
		ext:    make(chan pipeIn, e.cfg.RingSize),
		ctl:    make(chan func()),
		wake:   make([]bool, e.cfg.Loops),
		wakeCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	for l := 0; l < e.cfg.Loops; l++ {
		x.in = append(x.in, ring.New[pipeIn](e.cfg.RingSize))
		x.toLoop = append(x.toLoop, ring.New[out](e.cfg.RingSize))
	}
	return x
}

// notify wakes the executor if it parked. Safe from any goroutine.
func (x *pipeExec) notify() {
	if x.sleeping.Load() {
		select {
		case x.wakeCh <- struct{}{}:
		default:
		}
	}
}

// do runs fn on the executor's goroutine and waits for it.
func (x *pipeExec) do(fn func()) {
	done := make(chan struct{})
	select {
	case x.ctl <- func() { fn(); close(done) }:
		<-done
	case <-x.done:
	}
}

const pipeBatch = 256

func (x *pipeExec) run(cpu int) {
	defer x.e.workerWG.Done()
	defer close(x.done)
	if !x.e.cfg.DisablePin {
		runtime.LockOSThread()
		netpoll.PinThread(cpu)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	idle := 0
	for {
		n := 0
		for _, in := range x.in {
			n += x.drainRing(in)
		}
	ext:
		for k := 0; k < pipeBatch; k++ {
			select {
			case pi := <-x.ext:
				x.pushOne(pi)
				n++
			default:
				break ext
			}
		}
		select {
		case fn := <-x.ctl:
			fn()
			n++
		default:
		}
		ckNow := int64(0)
		for _, rt := range x.pipes {
			n += rt.flow.Advance()
			if rt.ck != nil {
				if ckNow == 0 {
					ckNow = time.Now().UnixNano()
				}
				n += x.ckTick(rt, ckNow)
			}
		}
		x.flushWakes()
		if n > 0 {
			idle = 0
			continue
		}
		select {
		case <-x.e.stop:
			return
		default:
		}
		idle++
		switch {
		case idle < 50:
			continue
		case idle < 100:
			runtime.Gosched()
			continue
		}
		x.sleeping.Store(true)
		if x.pending() {
			x.sleeping.Store(false)
			continue
		}
		wait := time.Second
		now := time.Now().UnixNano()
		for _, rt := range x.pipes {
			if t, ok := rt.flow.NextTimer(); ok {
				wait = min(wait, time.Duration(t-now))
			}
		}
		wait = x.ckWait(now, wait)
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-x.wakeCh:
			case pi := <-x.ext:
				x.pushOne(pi)
			case fn := <-x.ctl:
				fn()
			case <-x.e.stop:
			case <-timer.C:
			}
			timer.Stop()
		}
		x.sleeping.Store(false)
		idle = 0
	}
}

// drainRing pushes up to pipeBatch events from in, batching runs of
// events for the same pipeline.
func (x *pipeExec) drainRing(in *ring.SPSC[pipeIn]) int {
	n := 0
	var cur *pipeRT
	b := x.batch[:0]
	for ; n < pipeBatch; n++ {
		pi := in.Peek()
		if pi == nil {
			break
		}
		if pi.rt != cur && len(b) > 0 {
			x.push(cur, b)
			b = b[:0]
		}
		if pi.rt.ck != nil && pi.rt.p != nil && !pi.rt.retired.Load() && !x.ckAdmit(pi.rt, pi) {
			*pi = pipeIn{} // a duplicate, answered
			in.Release()
			continue
		}
		cur = pi.rt
		b = append(b, pi.ev)
		*pi = pipeIn{}
		in.Release()
	}
	if len(b) > 0 {
		x.push(cur, b)
	}
	clear(b)
	x.batch = b[:0]
	return n
}

// push hands a batch to rt's pipeline (or drops it when rt is retired).
func (x *pipeExec) push(rt *pipeRT, b []pipeline.Event) {
	if rt.retired.Load() || rt.p == nil {
		rt.dropped.Add(uint64(len(b)))
		return
	}
	if rt.ck != nil {
		rt.p.MarkDirty()
	}
	rt.p.Input().Push(b)
}

func (x *pipeExec) pushOne(pi pipeIn) {
	x.one[0] = pi.ev
	x.push(pi.rt, x.one[:])
	x.one[0] = pipeline.Event{}
}

func (x *pipeExec) pending() bool {
	if len(x.ext) > 0 || x.ckPending() {
		return true
	}
	for _, in := range x.in {
		if in.Len() > 0 {
			return true
		}
	}
	return false
}

// emit hands o to loop li by its ring; the loop is woken at the end of
// the batch.
func (x *pipeExec) emit(li int, o out) {
	r := x.toLoop[li]
	for !r.TryPush(o) {
		if x.e.closing.Load() {
			o.discard()
			return
		}
		x.flushWakes()
		x.e.yield()
	}
	x.wake[li] = true
}

func (x *pipeExec) flushWakes() {
	for li, w := range x.wake {
		if w {
			x.wake[li] = false
			if l := x.e.loops[li].Load(); l != nil {
				l.np.Wake()
			}
		}
	}
}

// host implements pipeline.Host for the pipelines of one executor.
type host struct {
	x  *pipeExec
	rt *pipeRT
}

// Publish sends data into a room, as Engine.Publish does (data is valid
// JSON: pipelines make only that).
func (h host) Publish(roomName string, data []byte) error {
	_, err := h.x.e.publishJSON(roomName, data, 0)
	return err
}

// Reply sends a result to the event's sender, on its loop.
func (h host) Reply(ev *pipeline.Event, data []byte) {
	s, ok := ev.Origin.(*session)
	if !ok {
		return
	}
	h.x.emit(s.ls.index, out{kind: outResult, sess: s, msg: newMessage(encJSON, data, ev.ID), stream: h.rt.streamB})
}

// Connected reports whether ev's sender is still connected
// (pipeline.ListenerHost; any goroutine).
func (h host) Connected(ev *pipeline.Event) bool {
	s, ok := ev.Origin.(*session)
	return ok && !s.gone.Load()
}

// Listening reports whether room has members or subscribers now
// (pipeline.ListenerHost; any goroutine). A room that does not exist has
// none.
func (h host) Listening(roomName string) bool {
	v, ok := h.x.e.rooms.Load(roomName)
	if !ok {
		return false
	}
	r := v.(*room)
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	if len(r.subs) > 0 {
		return true
	}
	for _, n := range r.loopCount {
		if n > 0 {
			return true
		}
	}
	return false
}

// streamsMap maps a stream name to the pipelines reading it.
type streamsMap map[string][]*pipeRT

// event hands an `event` message to the pipelines reading its stream.
// Loop-only.
func (ls *loopState) event(s *session, env *protocol.Envelope) error {
	rts := (*ls.e.streams.Load())[string(env.Stream)]
	if len(rts) == 0 {
		return &protocol.Error{Code: CodeUnknownStream, Message: "no pipeline reads stream " + string(env.Stream)}
	}
	var data []byte
	if s.enc == encMsgpack {
		data = transcode(nil, env.Data, encMsgpack, encJSON)
	} else {
		data = append([]byte(nil), env.Data...)
	}
	if len(data) == 0 {
		data = []byte("null")
	}
	var id []byte // JSON, as the result's and the ack's messages are
	if env.ID != nil {
		if s.enc == encMsgpack {
			id = transcode(nil, env.ID, encMsgpack, encJSON)
		} else {
			id = append([]byte(nil), env.ID...)
		}
	}
	now := time.Now().UnixNano()
	var producer string
	if env.Producer != nil && env.HasPSeq {
		producer = string(env.Producer)
	}
	ev := pipeline.Event{Data: data, Time: now, ID: id, Origin: s}
	if h := ls.offer(s, pipeIn{ev: ev, producer: producer, pseq: env.PSeq}, rts, env.ID); h != nil {
		ls.hold(s, h) // overflow: block — this producer waits
	}
	ls.counters.events.Add(1)
	return nil
}

// offer hands an event to each of rts' pipelines in turn (tmpl carries
// its data, time, ids and producer; each pipeline gets an Event of its
// own). A full queue of a drop-newest pipeline drops it there, answered
// overloaded with replyID (the client's id, in its encoding); a full
// queue of a blocking one stops the round: offer returns what waits for
// it and the pipelines after it (nil when every pipeline took the event
// or dropped it). Loop-only.
func (ls *loopState) offer(s *session, tmpl pipeIn, rts []*pipeRT, replyID []byte) *heldEvent {
	for i, rt := range rts {
		pi := tmpl
		pi.rt = rt
		pi.ev = pipeline.NewEvent(rt.stream, tmpl.ev.Data, tmpl.ev.Time)
		pi.ev.ID, pi.ev.Origin = tmpl.ev.ID, tmpl.ev.Origin
		if rt.exec.in[ls.index].TryPush(pi) {
			rt.exec.notify()
			continue
		}
		if rt.dropNew.Load() { // overflow: drop-newest
			rt.overflowed.Add(1)
			ls.replyError(s, replyID, errOverloaded)
			continue
		}
		return &heldEvent{pi: pi, rest: rts[i+1:], replyID: replyID}
	}
	return nil
}

// CodeOverloaded answers an event a full pipeline queue dropped
// (input overflow: drop-newest).
const CodeOverloaded = "overloaded"

var errOverloaded = &protocol.Error{Code: CodeOverloaded, Message: "the pipeline's queue is full (input overflow: drop-newest): event dropped"}

// Ingest feeds data (one JSON value) to the pipelines reading stream, as
// an `event` without a sender would (a `reply` output skips it). It waits
// while the executor's queue is full, until ctx ends. Safe from any
// goroutine.
func (e *Engine) Ingest(ctx context.Context, stream string, data []byte) error {
	if e.state.Load() != stateStarted {
		return errors.New("engine: Ingest before Start or after Close")
	}
	rts := (*e.streams.Load())[stream]
	if len(rts) == 0 {
		return &protocol.Error{Code: CodeUnknownStream, Message: "no pipeline reads stream " + stream}
	}
	data = append([]byte(nil), data...)
	now := time.Now().UnixNano()
	for _, rt := range rts {
		if err := rt.exec.send(ctx, pipeIn{rt: rt, ev: pipeline.NewEvent(stream, data, now)}); err != nil {
			return err
		}
	}
	return nil
}

// send queues pi on the executor's channel.
func (x *pipeExec) send(ctx context.Context, pi pipeIn) error {
	select {
	case x.ext <- pi:
		x.notify()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-x.done:
		return errors.New("engine: closed")
	}
}

// Streams lists the streams pipelines read.
func (e *Engine) Streams() []string {
	var out []string
	for s := range *e.streams.Load() {
		out = append(out, s)
	}
	return out
}

// PipelineStats returns every pipeline's operators' stats, by pipeline
// name. Safe from any goroutine.
func (e *Engine) PipelineStats() map[string][]operators.StatsSnapshot {
	e.pipesMu.Lock()
	defer e.pipesMu.Unlock()
	out := make(map[string][]operators.StatsSnapshot, len(e.pipes))
	for name, rt := range e.pipes {
		out[name] = rt.flow.Stats()
	}
	return out
}

// CheckPipelines compiles specs without running them (what `streamd
// validate` and a reload do first).
func CheckPipelines(specs []pipeline.Spec) error {
	seen := map[string]bool{}
	var errs []error
	for _, s := range specs {
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("engine: two pipelines are called %q", s.Name))
		}
		seen[s.Name] = true
		if err := pipeline.Check(s, pipeline.Options{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReloadPipelines replaces the running pipelines with specs: new ones
// start, missing ones stop (their held events are flushed first), and a
// changed one is rebuilt keeping the operators — and their state — whose
// definition did not change. Connections are untouched. On error nothing
// changes. Safe from any goroutine; reloads are serialised.
func (e *Engine) ReloadPipelines(specs []pipeline.Spec) error {
	if err := CheckPipelines(specs); err != nil {
		return err
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.state.Load() == stateClosed {
		return errors.New("engine: reload after Close")
	}
	return e.applyPipelines(specs)
}

// execFor picks a pipeline's executor by its name.
func (e *Engine) execFor(name string) *pipeExec {
	return e.execs[maphash.String(e.seed, name)%uint64(len(e.execs))]
}

// applyPipelines builds specs on their executors. Caller holds reloadMu.
func (e *Engine) applyPipelines(specs []pipeline.Spec) error {
	e.pipesMu.Lock()
	old := e.pipes
	e.pipesMu.Unlock()
	next := make(map[string]*pipeRT, len(specs))
	streams := streamsMap{}
	var errs []error
	var started []*pipeRT
	for i := range specs {
		spec := specs[i]
		rt := old[spec.Name]
		fresh := rt == nil
		if fresh {
			x := e.execFor(spec.Name)
			rt = &pipeRT{name: spec.Name, exec: x}
			rt.flow = operators.NewFlow(operators.FlowOptions{Name: spec.Name, Notify: x.notify})
		}
		var err error
		rt.exec.do(func() {
			var prev *pipeline.Pipeline
			if !fresh {
				prev = rt.p
			}
			var p *pipeline.Pipeline
			p, err = pipeline.Build(spec, rt.flow, pipeline.Options{Host: host{x: rt.exec, rt: rt}, Logger: e.cfg.Logger, Store: e.store}, prev)
			if err != nil {
				return
			}
			if err = e.ckStart(rt, p, fresh); err != nil {
				_ = p.Close()
				return
			}
			if err = rt.flow.Open(); err != nil {
				return
			}
			rt.p = p
			rt.stream, rt.streamB = spec.Input.Stream, []byte(spec.Input.Stream)
			rt.dropNew.Store(spec.Input.Overflow == "drop-newest")
			if fresh {
				rt.exec.pipes = append(rt.exec.pipes, rt)
			}
		})
		if err != nil {
			errs = append(errs, err)
			if !fresh { // keep the running version
				next[spec.Name] = rt
				if rt.stream != "" {
					streams[rt.stream] = append(streams[rt.stream], rt)
				}
			}
			continue
		}
		next[spec.Name] = rt
		if rt.stream != "" {
			streams[rt.stream] = append(streams[rt.stream], rt)
		}
		if !fresh && rt.input != nil && !sameInput(rt.input.spec, spec.Input) {
			rt.input.stop()
			rt.input = nil
		}
		if rt.input == nil && spec.Input.Stream == "" {
			started = append(started, rt)
		}
	}
	if len(errs) > 0 && old == nil {
		// first start: refuse to run half a config
		for _, rt := range next {
			e.stopPipeline(rt)
		}
		return errors.Join(errs...)
	}
	e.streams.Store(&streams)
	e.pipesMu.Lock()
	e.pipes = next
	e.pipesMu.Unlock()
	for name, rt := range old {
		if next[name] == nil {
			e.stopPipeline(rt)
		}
	}
	for _, rt := range started {
		rt.input = startInput(e, rt, rt.p.Spec.Input)
	}
	return errors.Join(errs...)
}

// stopPipeline stops rt's input, flushes what its operators hold and
// closes it.
func (e *Engine) stopPipeline(rt *pipeRT) {
	if rt.input != nil {
		rt.input.stop()
	}
	rt.retired.Store(true)
	rt.exec.do(func() {
		if rt.ck != nil && rt.p != nil {
			rt.exec.ckStop(rt) // the windows stay open in the checkpoint
		} else {
			rt.flow.Drain()
		}
		_ = rt.flow.Close()
		if rt.p != nil {
			_ = rt.p.Close()
		}
		for i, p := range rt.exec.pipes {
			if p == rt {
				rt.exec.pipes = append(rt.exec.pipes[:i], rt.exec.pipes[i+1:]...)
				break
			}
		}
	})
}

// stopPipelines stops every pipeline (Close).
func (e *Engine) stopPipelines() {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.pipesMu.Lock()
	pipes := e.pipes
	e.pipes = nil
	e.pipesMu.Unlock()
	empty := streamsMap{}
	e.streams.Store(&empty)
	var wg sync.WaitGroup
	for _, rt := range pipes {
		wg.Add(1)
		go func() { defer wg.Done(); e.stopPipeline(rt) }()
	}
	wg.Wait()
}

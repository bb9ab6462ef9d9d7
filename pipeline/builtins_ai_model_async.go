package pipeline

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"streamd/aimodel"
	"streamd/operators"
)

// asyncNode is the engine of the ops that call a server (embed, llm,
// qdrant): the flow goroutine prepares each event (prep), groups the
// ones that need the server into batches (by count, and by a time budget
// on the flow's clock), and hands the batches to worker goroutines
// (work), at most maxIn events inside the node at a time. Results come
// back on a bounded channel and are emitted on the flow goroutine in
// input order: successes on the main output, failures on `error` as
// error records, events dropped on purpose (nobody listening) counted.
// Workers may also send side messages before an event's result (an llm's
// stream deltas), which side handles on the flow goroutine as they come.
//
// Like a concurrent map, results reach the flow through Flow.Post (a
// poster goroutine asks the flow to drain); Push blocks when maxIn
// events are in (overflow "block"), which slows the input down, or sends
// the event to `error` (overflow "error"). Flush waits for every event
// in (at most flushWait); Close cancels the requests and drops what is
// in (counted dropped).
type asyncNode[P any] struct {
	stats *operators.Stats
	out   operators.Outlet[Event]
	errs  operators.Outlet[Event]
	name  string
	flow  *operators.Flow

	conc, maxIn, batchSize int
	maxWait                time.Duration
	overErr                bool

	// prep returns an event's payload, or its result at once (a cache
	// hit, an offline embedding, bad input). Flow goroutine.
	prep func(ev *Event) (p P, now *asyncMsg)
	// work runs a batch on a worker goroutine: it must send one final
	// message per item (send returns false once the node is closing).
	work func(ctx context.Context, items []asyncItem[P], send func(asyncMsg) bool)
	// side handles a side message; finish sees each final one. Flow
	// goroutine; either may be nil.
	side   func(s *asyncSlot[P], m *asyncMsg)
	finish func(s *asyncSlot[P], m *asyncMsg)
	// closers run after the workers stopped.
	closers []func()

	// Flow goroutine only.
	slots    []asyncSlot[P]
	next     uint64
	head     uint64
	inFlight int
	pending  []asyncItem[P]
	timerGen uint64
	timerSet bool
	outBuf   []Event
	errBuf   []Event
	state    int // asyncNew, asyncOpen, asyncClosed

	jobs    chan []asyncItem[P]
	msgs    chan asyncMsg
	notify  chan struct{}
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	drainFn func()
	posted  atomic.Pointer[operators.Flow]
}

const (
	asyncNew = iota
	asyncOpen
	asyncClosed
)

// asyncItem is one event handed to a worker: its sequence number, the
// event (read-only: its Data is immutable) and its payload.
type asyncItem[P any] struct {
	seq uint64
	ev  Event
	p   P
}

// asyncMsg is what a worker sends back for an item.
type asyncMsg struct {
	seq   uint64
	final bool           // the item's result (else a side message)
	data  []byte         // final: the event's new data (nil: unchanged); side: the message
	err   *aimodel.Error // final: the failure
	drop  bool           // final: dropped on purpose
	extra any            // final: for finish (an embedding to cache)
}

// asyncSlot is an event inside the node, in the reorder ring.
type asyncSlot[P any] struct {
	seq         uint64
	used, ready bool
	ev          Event
	p           P
	start       time.Time
	res         asyncMsg
}

func newAsyncNode[P any](name, kind string, conc, maxIn, batchSize int, maxWait time.Duration, overErr bool) *asyncNode[P] {
	batchSize = max(batchSize, 1)
	if maxIn <= 0 {
		maxIn = 4 * max(conc, 1) * batchSize
	}
	maxIn = max(maxIn, batchSize)
	return &asyncNode[P]{stats: operators.NewStats(name, kind), name: name, conc: conc, maxIn: maxIn,
		batchSize: batchSize, maxWait: maxWait, overErr: overErr, slots: make([]asyncSlot[P], maxIn)}
}

// Open starts the workers (once: a node a reload keeps is opened again
// with its flow).
func (n *asyncNode[P]) Open(f *operators.Flow) error {
	n.flow = f
	n.posted.Store(f)
	if n.state != asyncNew {
		return nil
	}
	n.state = asyncOpen
	if n.conc <= 0 {
		return nil // every result is made by prep
	}
	n.jobs = make(chan []asyncItem[P], n.maxIn)
	n.msgs = make(chan asyncMsg, n.maxIn+256)
	n.notify = make(chan struct{}, 1)
	n.stop = make(chan struct{})
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.drainFn = n.drain
	n.wg.Add(n.conc)
	for range n.conc {
		go n.worker()
	}
	go n.poster()
	return nil
}

func (n *asyncNode[P]) worker() {
	defer n.wg.Done()
	for job := range n.jobs {
		if n.ctx.Err() != nil {
			continue
		}
		n.work(n.ctx, job, n.send)
	}
}

// send hands m to the flow side; false once the node is closing.
func (n *asyncNode[P]) send(m asyncMsg) bool {
	select {
	case n.msgs <- m:
	case <-n.ctx.Done():
		return false
	}
	select {
	case n.notify <- struct{}{}:
	default:
	}
	return true
}

// poster asks the flow to drain when workers sent something.
func (n *asyncNode[P]) poster() {
	for {
		select {
		case <-n.notify:
			f := n.posted.Load()
			if f.Post(n.drainFn) != nil && n.posted.Load() == f {
				return
			}
		case <-n.stop:
			return
		}
	}
}

// Push prepares each event and takes it in, then emits what is ready.
func (n *asyncNode[P]) Push(batch []Event) {
	n.stats.In(len(batch))
	if n.state != asyncOpen {
		n.stats.Dropped(len(batch))
		return
	}
	for i := range batch {
		if !n.admit() {
			n.errBuf = append(n.errBuf, aiErrorEvent(batch[i], n.name, &aimodel.Error{Reason: aimodel.ReasonOverloaded}))
			continue
		}
		start := time.Now()
		p, now := n.prep(&batch[i])
		n.submit(batch[i], p, now, start)
	}
	if len(n.pending) > 0 && !n.timerSet {
		if n.maxWait <= 0 {
			n.dispatch()
		} else {
			n.timerSet = true
			n.flow.After(n.maxWait, n, n.timerGen)
		}
	}
	n.drain()
}

// admit makes room for one more event: false when there is none and the
// overflow policy is "error".
func (n *asyncNode[P]) admit() bool {
	if n.inFlight < n.maxIn {
		return true
	}
	n.emitReady()
	for n.inFlight >= n.maxIn {
		if n.overErr || n.msgs == nil {
			return false
		}
		n.dispatch()
		n.take(<-n.msgs)
		n.emitReady()
	}
	return true
}

func (n *asyncNode[P]) submit(ev Event, p P, now *asyncMsg, start time.Time) {
	seq := n.next
	n.next++
	s := &n.slots[seq%uint64(len(n.slots))]
	*s = asyncSlot[P]{seq: seq, used: true, ev: ev, p: p, start: start}
	n.inFlight++
	if now != nil {
		now.seq, now.final = seq, true
		n.take(*now)
		return
	}
	n.pending = append(n.pending, asyncItem[P]{seq: seq, ev: ev, p: p})
	if len(n.pending) >= n.batchSize {
		n.dispatch()
	}
}

// dispatch hands the pending batch to the workers (never blocks: jobs
// has room for maxIn batches).
func (n *asyncNode[P]) dispatch() {
	if len(n.pending) == 0 {
		return
	}
	job := n.pending
	n.pending = make([]asyncItem[P], 0, n.batchSize)
	n.timerGen++
	n.timerSet = false
	n.jobs <- job
}

// OnTimer sends a partial batch whose time budget ran out.
func (n *asyncNode[P]) OnTimer(_ int64, gen uint64) {
	if n.state != asyncOpen {
		return
	}
	if gen == n.timerGen && n.timerSet {
		n.dispatch()
	}
	n.drain()
}

// drain takes the messages that are back, without waiting, and emits.
func (n *asyncNode[P]) drain() {
	if n.state != asyncOpen {
		return
	}
	if n.msgs != nil {
	loop:
		for {
			select {
			case m := <-n.msgs:
				n.take(m)
			default:
				break loop
			}
		}
	}
	n.emitReady()
}

func (n *asyncNode[P]) take(m asyncMsg) {
	s := &n.slots[m.seq%uint64(len(n.slots))]
	if !s.used || s.seq != m.seq || s.ready {
		return
	}
	if !m.final {
		if n.side != nil {
			n.side(s, &m)
		}
		return
	}
	s.res, s.ready = m, true
	n.stats.Observe(s.start, 1)
	if n.finish != nil {
		n.finish(s, &m)
	}
}

// emitReady emits the events at the head of the ring that have their
// result, in order.
func (n *asyncNode[P]) emitReady() {
	size := uint64(len(n.slots))
	for n.inFlight > 0 {
		s := &n.slots[n.head%size]
		if !s.used || !s.ready {
			break
		}
		switch {
		case s.res.err != nil:
			n.errBuf = append(n.errBuf, aiErrorEvent(s.ev, n.name, s.res.err))
		case s.res.drop:
			n.stats.Dropped(1)
		case s.res.data != nil:
			n.outBuf = append(n.outBuf, s.ev.WithData(s.res.data, nil))
		default:
			n.outBuf = append(n.outBuf, s.ev)
		}
		*s = asyncSlot[P]{}
		n.head++
		n.inFlight--
	}
	if len(n.outBuf) > 0 {
		n.stats.Out(len(n.outBuf))
		n.out.Emit(n.outBuf)
		clear(n.outBuf)
		n.outBuf = n.outBuf[:0]
	}
	if len(n.errBuf) > 0 {
		n.stats.Errors(len(n.errBuf))
		n.errs.Emit(n.errBuf)
		clear(n.errBuf)
		n.errBuf = n.errBuf[:0]
	}
}

// flushWait bounds how long Flush waits for the events inside (a long
// llm stream must not hold a reload or a shutdown for minutes).
const flushWait = 10 * time.Second

// Flush sends the partial batch and waits for every event inside, at
// most flushWait; what is still inside then stays (Close drops it).
func (n *asyncNode[P]) Flush() {
	if n.state != asyncOpen {
		return
	}
	n.dispatch()
	n.emitReady()
	if n.inFlight == 0 || n.msgs == nil {
		return
	}
	t := time.NewTimer(flushWait)
	defer t.Stop()
	for n.inFlight > 0 {
		select {
		case m := <-n.msgs:
			n.take(m)
			n.emitReady()
		case <-t.C:
			return
		}
	}
}

// Close cancels the requests, stops the workers and waits for them; the
// events still inside are dropped (counted).
func (n *asyncNode[P]) Close() error {
	if n.state != asyncOpen {
		n.state = asyncClosed
		n.runClosers()
		return nil
	}
	n.state = asyncClosed
	n.timerGen++
	if n.jobs != nil {
		n.cancel()
		close(n.jobs)
		n.wg.Wait()
		close(n.stop)
	}
	n.stats.Dropped(n.inFlight)
	n.inFlight = 0
	clear(n.slots)
	n.pending = nil
	n.runClosers()
	return nil
}

func (n *asyncNode[P]) runClosers() {
	for _, f := range n.closers {
		f()
	}
	n.closers = nil
}

func (n *asyncNode[P]) Stats() *operators.Stats { return n.stats }

func (n *asyncNode[P]) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return operators.Inlet[Event](n), reflect.TypeFor[Event](), true
}

func (n *asyncNode[P]) Output(name string) (operators.Port, bool) {
	switch name {
	case "":
		return &n.out, true
	case operators.ErrorPort:
		return &n.errs, true
	}
	return nil, false
}

func (n *asyncNode[P]) Outputs() []string { return []string{"", operators.ErrorPort} }

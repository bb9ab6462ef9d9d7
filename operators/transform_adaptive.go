package operators

import "sync/atomic"

// The adaptive pool of a ConcurrentMap (ConcurrencyOptions.Adaptive).
//
// The controller runs on the flow's goroutine: a flow timer every Every
// (and Push, while it waits for room) samples len(jobs), the events
// handed out that no worker has taken yet. To grow, it starts a worker;
// to shrink, it adds one to retire, and the next worker that finishes an
// event takes it and exits. A worker that waits for an event would not
// see it, so the controller also puts a wake-up (a job whose seq is
// cmWake) in jobs, behind the events queued (at most Low): whoever takes
// it takes the retirement, if one is still owed. A grow while one is owed
// takes it back instead of starting a goroutine. So the goroutines alive
// are the pool's size plus the retirements owed (at most Max in all),
// and the workers' loop costs one atomic load per event more than a
// fixed pool's.

// cmWake is the seq of a wake-up job: no event, it makes an idle worker
// look at retire.
const cmWake = ^uint64(0)

// cmAdaptive is a ConcurrentMap's controller state. Flow goroutine only,
// except the atomics (shared with the workers) and the Stats gauges.
type cmAdaptive struct {
	opts    AdaptiveConcurrency
	workers int   // the pool's size: workers alive, less the retirements owed
	above   int   // consecutive samples at or above the high mark
	below   int   // consecutive samples at or below Low
	next    int64 // when the next sample is due (flow clock)
	gen     uint64
	ticking bool // a sample timer is set (its arg is gen: arm bumps it, so older timers do nothing)

	retire atomic.Int64 // retirements owed: a worker that takes one exits
	wakes  atomic.Int64 // wake-ups in jobs (not events: the queue's length leaves them out)
	alive  atomic.Int32 // worker goroutines running (tests read it)

	gWorkers, gQueue, gHigh *atomic.Int64
	cUp, cDown              *atomic.Uint64
}

func newCMAdaptive(st *Stats, opts AdaptiveConcurrency, start int) *cmAdaptive {
	a := &cmAdaptive{
		opts:     opts,
		workers:  start,
		gWorkers: st.Gauge("workers"),
		gQueue:   st.Gauge("queue"),
		gHigh:    st.Gauge("queue_high"),
		cUp:      st.Counter("scale_ups"),
		cDown:    st.Counter("scale_downs"),
	}
	st.Gauge("workers_min").Store(int64(opts.Min))
	st.Gauge("workers_max").Store(int64(opts.Max))
	st.Gauge("queue_low").Store(int64(opts.Low))
	a.gHigh.Store(int64(a.high()))
	return a
}

// takeRetire takes one retirement owed, if there is one.
func (a *cmAdaptive) takeRetire() bool {
	for {
		n := a.retire.Load()
		if n <= 0 {
			return false
		}
		if a.retire.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// high is the high-water mark in effect: High, or the pool's size.
func (a *cmAdaptive) high() int {
	if a.opts.High > 0 {
		return a.opts.High
	}
	return a.workers
}

func (a *cmAdaptive) setGauges() {
	a.gWorkers.Store(int64(a.workers))
	a.gHigh.Store(int64(a.high()))
}

// closed zeroes the size gauge: the workers are gone.
func (a *cmAdaptive) closed() {
	a.ticking = false
	a.gWorkers.Store(0)
	a.gQueue.Store(0)
}

// arm starts sampling: the first sample is one period from now, and the
// streaks start afresh. Flow goroutine only.
func (o *ConcurrentMap[In, Out]) arm() {
	a := o.ad
	a.gen++
	a.ticking = true
	a.above, a.below = 0, 0
	a.next = o.flow.Now() + int64(a.opts.Every)
	o.flow.At(a.next, o, a.gen)
}

// OnTimer takes a sample and sets the next timer, or lets sampling stop
// when the map is idle at Min. Flow goroutine only (Timed).
func (o *ConcurrentMap[In, Out]) OnTimer(_ int64, arg uint64) {
	a := o.ad
	if a == nil || o.state != cmOpen || !a.ticking || arg != a.gen {
		return // a fixed pool, closed, or a timer of an earlier arm
	}
	now := o.flow.Now()
	if now < a.next { // Push took the sample meanwhile
		o.flow.At(a.next, o, a.gen)
		return
	}
	if !o.sample(now) {
		a.ticking = false
		return
	}
	o.flow.At(a.next, o, a.gen)
}

// sampleIfDue takes a sample if one is due: Push calls it while it waits
// for room, when the flow's timers cannot run. The timer set for the
// sample Push took sees it is early and moves on to the next one.
func (o *ConcurrentMap[In, Out]) sampleIfDue() {
	if now := o.flow.Now(); now >= o.ad.next {
		o.sample(now) // events are in flight: sampling goes on
	}
}

// sample reads the queue, resizes the pool if the marks say so, and
// reports whether to keep sampling. Flow goroutine only.
func (o *ConcurrentMap[In, Out]) sample(now int64) bool {
	a := o.ad
	a.next = now + int64(a.opts.Every)
	q := max(len(o.jobs)-int(a.wakes.Load()), 0)
	switch {
	case q >= a.high():
		a.above++
		a.below = 0
	case q <= a.opts.Low:
		a.below++
		a.above = 0
	default:
		a.above, a.below = 0, 0
	}
	a.gQueue.Store(int64(q))
	switch {
	case a.above >= 2 && a.workers < a.opts.Max:
		o.grow()
	case a.below > a.opts.Quiet && a.workers > a.opts.Min:
		o.shrink()
		a.below = 1 // this sample opens the next quiet stretch
	}
	return a.workers > a.opts.Min || q > 0 || o.inFlight > 0
}

// grow adds a worker: it takes back a retirement owed, if there is one,
// or starts a goroutine.
func (o *ConcurrentMap[In, Out]) grow() {
	a := o.ad
	if !a.takeRetire() { // else a worker told to go has not gone yet: it stays
		o.wg.Add(1)
		go o.workAdaptive()
	}
	a.workers++
	a.cUp.Add(1)
	a.setGauges()
}

// shrink retires a worker: the next one to finish an event (or to take
// the wake-up, if all wait for events) exits.
func (o *ConcurrentMap[In, Out]) shrink() {
	a := o.ad
	a.retire.Add(1)
	a.wakes.Add(1)
	select {
	case o.jobs <- cmJob[In]{seq: cmWake}:
	default: // no room (jobs has Max more than MaxInFlight): no worker waits, one will see retire
		a.wakes.Add(-1)
	}
	a.workers--
	a.cDown.Add(1)
	a.setGauges()
}

// workAdaptive is a worker of an adaptive pool: work, but after each
// event (or wake-up) it takes a retirement owed, if there is one, and
// exits.
func (o *ConcurrentMap[In, Out]) workAdaptive() {
	a := o.ad
	a.alive.Add(1)
	defer o.wg.Done()
	defer a.alive.Add(-1)
	for j := range o.jobs {
		if j.seq == cmWake {
			a.wakes.Add(-1)
		} else {
			o.do(j)
		}
		if a.retire.Load() > 0 && a.takeRetire() {
			return
		}
	}
}

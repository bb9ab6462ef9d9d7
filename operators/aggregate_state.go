package operators

import (
	"math"
	"slices"
)

// The aggregator's state: cells and states (what a window aggregates),
// key states and their life, results, and the calendar of per-key
// deadlines. See aggregate.go for the model.

// aggNone marks "no time": no pane in a slot, no due entry armed.
const aggNone = math.MinInt64

// Results carve their Values from arenas of this many values.
const aggArena = 512

// Inactive keys kept before a sweep forgets them, and states kept for reuse.
const (
	aggIdleKeys  = 1024
	aggFreeState = 1024
)

// aggCell is the part of an aggregate every function but percentiles and
// custom ones is computed from.
type aggCell struct {
	n        int64
	sum      float64
	min, max float64
}

func (c *aggCell) add(v float64) {
	if c.n == 0 {
		c.min, c.max = v, v
	} else {
		c.min = min(c.min, v)
		c.max = max(c.max, v)
	}
	c.n++
	c.sum += v
}

func (c *aggCell) merge(b *aggCell) {
	if b.n == 0 {
		return
	}
	if c.n == 0 {
		*c = *b
		return
	}
	c.n += b.n
	c.sum += b.sum
	c.min = min(c.min, b.min)
	c.max = max(c.max, b.max)
}

// aggState is the aggregate of a set of values: a pane, a session, a
// count window, or a sliding window's merged panes.
type aggState struct {
	c    aggCell
	vals []float64     // percentiles only: every value
	accs []Accumulator // custom functions only, by AggFn.slot
}

func (a *aggState) reset() {
	a.c = aggCell{}
	a.vals = a.vals[:0]
	for _, x := range a.accs {
		x.Reset()
	}
}

func (a *aggState) add(v float64, pct bool) {
	a.c.add(v)
	if pct {
		a.vals = append(a.vals, v)
	}
	for _, x := range a.accs {
		x.Add(v)
	}
}

func (a *aggState) merge(b *aggState) {
	a.c.merge(&b.c)
	a.vals = append(a.vals, b.vals...)
	for i, x := range a.accs {
		x.Merge(b.accs[i])
	}
}

// aggKey is one key's state. Which fields are used depends on the window
// kind: slots, hi and next for tumbling and sliding windows, sessions for
// session windows, cur, first and last for count windows.
type aggKey[K comparable] struct {
	key    K
	id     uint32
	gen    uint32 // o.gens[id] when this state took the id
	active bool   // has windows not yet forgotten
	dueAt  int64  // when this key's live due entry is set for; aggNone if none

	// tumbling and sliding
	slots []aggSlot  // ring, len a power of two; pane p lives at p&mask
	sufs  []aggCell  // by position: two-stacks suffixes (sliding only)
	xs    []aggSlotX // by position: values, accumulators (nil if no function needs them)
	mask  int64
	hi    int64 // newest pane with events
	hiEnd int64 // the end of hi's last window
	next  int64 // end of the next window to fire for the first time
	dirty bool  // windows with ends dLo, dLo+slide, … dHi have late updates
	dLo   int64
	dHi   int64
	// two stacks (see paneMerge): suffixes of [fs, fl), back of [fl, be)
	tsOK       bool
	fs, fl, be int64
	back       aggState // cell and custom accumulators only

	// session
	sessions []aggSession // sorted by start, never overlapping

	// count
	cur         aggState
	first, last int64
}

// key returns k's state, active, making it if needed.
func (o *Aggregator[T, K]) key(k K) *aggKey[K] {
	ks := o.keys[k]
	if ks == nil {
		ks = o.newKey(k)
		o.keys[k] = ks
		o.idle++
	}
	if !ks.active {
		ks.active = true
		o.idle--
	}
	return ks
}

func (o *Aggregator[T, K]) newKey(k K) *aggKey[K] {
	var ks *aggKey[K]
	if n := len(o.free); n > 0 {
		ks = o.free[n-1]
		o.free[n-1] = nil
		o.free = o.free[:n-1]
	} else {
		ks = &aggKey[K]{}
		if len(o.ids) > 0 {
			ks.id = o.ids[len(o.ids)-1]
			o.ids = o.ids[:len(o.ids)-1]
		} else {
			ks.id = uint32(len(o.states))
			o.states = append(o.states, nil)
			o.gens = append(o.gens, 0)
		}
		o.states[ks.id] = ks
		ks.cur.accs = o.newAccs()
	}
	ks.key = k
	ks.gen = o.gens[ks.id]
	ks.dueAt = aggNone
	return ks
}

// deactivate marks ks as holding nothing; a sweep may forget it later.
func (o *Aggregator[T, K]) deactivate(ks *aggKey[K]) {
	ks.active = false
	ks.tsOK = false
	o.idle++
	for i := range ks.slots {
		ks.slots[i].idx = aggNone
	}
}

// sweepIdle forgets inactive keys once they outnumber the active ones
// (and aggIdleKeys), keeping their memory for new keys.
func (o *Aggregator[T, K]) sweepIdle() {
	if o.idle <= aggIdleKeys || o.idle <= len(o.keys)-o.idle {
		return
	}
	for k, ks := range o.keys {
		if ks.active {
			continue
		}
		delete(o.keys, k)
		o.gens[ks.id]++ // its due entries are stale now
		var zero K
		ks.key = zero
		if len(o.free) < aggFreeState {
			ks.gen = o.gens[ks.id]
			o.free = append(o.free, ks)
		} else {
			o.states[ks.id] = nil
			o.ids = append(o.ids, ks.id)
		}
	}
	o.idle = 0
}

// newAccs returns a fresh accumulator per custom function, or nil.
func (o *Aggregator[T, K]) newAccs() []Accumulator {
	if o.ncust == 0 {
		return nil
	}
	accs := make([]Accumulator, 0, o.ncust)
	for _, fn := range o.fns {
		if fn.kind == aggCustom {
			accs = append(accs, fn.newA())
		}
	}
	return accs
}

// result appends the result of a window whose aggregate is a.
func (o *Aggregator[T, K]) result(ks *aggKey[K], start, end int64, a *aggState, update bool) {
	n := len(o.fns)
	if cap(o.arena)-len(o.arena) < n {
		o.arena = make([]float64, 0, max(aggArena, n))
	}
	l := len(o.arena)
	o.arena = o.arena[:l+n]
	vals := o.arena[l : l+n : l+n]
	sorted := false
	for i := range o.fns {
		fn := &o.fns[i]
		var v float64
		switch fn.kind {
		case aggCount:
			v = float64(a.c.n)
		case aggSum:
			v = a.c.sum
		case aggAvg:
			v = a.c.sum / float64(a.c.n)
		case aggMin:
			v = a.c.min
		case aggMax:
			v = a.c.max
		case aggPercentile:
			if !sorted {
				slices.Sort(a.vals)
				sorted = true
			}
			v = aggNearestRank(a.vals, fn.p)
		case aggCustom:
			v = a.accs[fn.slot].Result()
		}
		vals[i] = v
	}
	o.out = append(o.out, WindowResult[K]{
		Key: ks.key, Start: start, End: end, Count: a.c.n,
		Value: vals[0], Values: vals, Names: o.names, Update: update,
	})
}

// aggNearestRank returns the p-th percentile of sorted by nearest rank.
func aggNearestRank(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	r := int(math.Ceil(p/100*float64(n))) - 1
	return sorted[min(max(r, 0), n-1)]
}

// aggCalendar is a timer queue for many entries that share a few times
// (every key of a sliding window is due at the same window end): a heap
// of the distinct times, each with a bucket of the entries set for it, in
// the order they were set. Setting an entry for a time that has a bucket
// is an append, and for the same time as the last one not even a map
// lookup; firing a time runs its bucket. Buckets are reused. Flow
// goroutine only.
type aggCalendar struct {
	times   Timers        // one entry per distinct time; arg: its bucket
	byTime  map[int64]int // time → bucket, for times not yet fired
	buckets [][]uint64    // the args set for each bucket's time
	free    []int         // buckets not in use
	last    int64         // time of the last At (aggNone: none), in bucket lastB
	lastB   int
	fire    func(when int64, arg uint64)
}

func (c *aggCalendar) init(fire func(when int64, arg uint64)) {
	c.byTime = make(map[int64]int)
	c.last = aggNone
	c.fire = fire
}

// At schedules fire(when, arg) for the first Advance at or after when.
func (c *aggCalendar) At(when int64, arg uint64) {
	b, ok := c.lastB, when == c.last
	if !ok {
		b, ok = c.byTime[when]
	}
	if !ok {
		if n := len(c.free); n > 0 {
			b = c.free[n-1]
			c.free = c.free[:n-1]
		} else {
			b = len(c.buckets)
			c.buckets = append(c.buckets, nil)
		}
		c.byTime[when] = b
		c.times.At(when, c, uint64(b))
	}
	c.last, c.lastB = when, b
	c.buckets[b] = append(c.buckets[b], arg)
}

// Advance fires, in time order, every entry due at or before now.
func (c *aggCalendar) Advance(now int64) { c.times.Advance(now) }

// Next returns the earliest time with entries.
func (c *aggCalendar) Next() (int64, bool) { return c.times.Next() }

// OnTimer fires the bucket of when. Its entries may set new ones, for
// when too: those go to a new bucket, fired in the same Advance.
func (c *aggCalendar) OnTimer(when int64, b uint64) {
	delete(c.byTime, when)
	if c.last == when {
		c.last = aggNone
	}
	args := c.buckets[b]
	for _, arg := range args {
		c.fire(when, arg)
	}
	clear(args)
	c.buckets[b] = args[:0]
	c.free = append(c.free, int(b))
}

// winGCD is the greatest common divisor of two positive numbers.
func winGCD(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// winFloorDiv is a / b rounded toward −∞ (b > 0).
func winFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

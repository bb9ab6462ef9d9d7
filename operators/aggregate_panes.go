package operators

// Tumbling and sliding windows, on panes.
//
// Time is cut into panes of pw = gcd(size, slide); pane p is
// [p·pw, (p+1)·pw). Window starts are multiples of slide (their ends are
// too only when slide divides size), and a window is the panesPerWin
// panes from its start. An event updates the one pane its
// time falls in; a window merges its panes when it fires.
//
// Each key keeps its panes in a ring (slots[p&mask]), a slot's idx
// saying which pane it holds. A pane is live while one of its windows is
// not yet forgotten: lastEnd(p) + lateness > W. Live panes span at most
// (size + slide + OutOfOrder + lateness)/pw + 1 panes: no event newer than
// W + OutOfOrder gets in (the watermark follows it), and none older than
// the oldest live window (it is late). When a pane needs a slot that a
// live pane holds, the ring doubles; so it grows to the span of the live
// panes, no further, and then slots are reused: idx says whether a slot
// still holds its pane, and a slot whose pane is dead is reset for the new
// one. Deactivation marks every slot empty (Flush may keep a watermark
// under which old panes would look live).
//
// The ring is three arrays by position, so that what every event touches
// stays small: slots (idx and cell: 40 bytes), sufs (the two stacks'
// suffixes, for sliding windows) and xs (values and custom accumulators,
// only when a function needs them).
//
// Per key: hi is the newest pane with events, next the end of the next
// window to fire for the first time (every window ending at or before W
// has fired, or had no events, or is forgotten). The key's due entry is
// at next while next ≤ lastEnd(hi), then at lastEnd(hi) + lateness, when
// the key is deactivated.

// aggSlot is a ring slot: the cell of pane idx (aggNone: no pane).
type aggSlot struct {
	idx int64
	c   aggCell
}

// aggSlotX is the rest of a slot's state, when functions need it: the
// pane's values and custom accumulators, and the two-stacks suffix
// accumulators of the slot's position.
type aggSlotX struct {
	vals    []float64
	accs    []Accumulator
	sufAccs []Accumulator
}

// aggPaneCache is the pane of the last event and its first and last
// windows' ends.
type aggPaneCache struct {
	ok       bool
	p, start int64
	le, fe   int64
}

// paneLastEnd is the end of the last window that contains pane p.
func (o *Aggregator[T, K]) paneLastEnd(p int64) int64 {
	return winFloorDiv(p*o.pw, o.slide)*o.slide + o.size
}

// paneFirstEnd is the end of the first window that contains pane p.
func (o *Aggregator[T, K]) paneFirstEnd(p int64) int64 { return o.endAfter(p * o.pw) }

// endAfter is the first window end after t.
func (o *Aggregator[T, K]) endAfter(t int64) int64 {
	return winFloorDiv(t-o.size, o.slide)*o.slide + o.slide + o.size
}

// endAtOrBefore is the last window end at or before t.
func (o *Aggregator[T, K]) endAtOrBefore(t int64) int64 {
	return winFloorDiv(t-o.size, o.slide)*o.slide + o.size
}

// paneAdd adds v at time ts to k's windows, or reports that every window
// of ts is forgotten.
func (o *Aggregator[T, K]) paneAdd(k K, ts int64, v float64) (late bool) {
	c := &o.pc
	if !c.ok || ts < c.start || ts-c.start >= o.pw { // divisions are dear: most events share their pane with the last one
		c.p = winFloorDiv(ts, o.pw)
		c.start, c.le, c.fe, c.ok = c.p*o.pw, o.paneLastEnd(c.p), o.paneFirstEnd(c.p), true
	}
	p, le, fe := c.p, c.le, c.fe
	if le+o.lateness <= o.wm {
		return true
	}
	ks := o.keys[k]
	if ks == nil || !ks.active {
		ks = o.key(k)
		ks.hi, ks.hiEnd = p, le
		ks.next = aggNever
	} else if p > ks.hi {
		ks.hi, ks.hiEnd = p, le
	}
	// Windows ending at or before W are done (fired, empty or dirty now):
	// next is the first window of p still to fire.
	if ks.next <= o.wm {
		ks.next = o.endAfter(o.wm)
	}
	if fe <= o.wm {
		ks.next = min(ks.next, o.endAfter(o.wm))
		// A late update: the open windows of p that fired get it again.
		lo := max(fe, o.endAfter(o.wm-o.lateness))
		hi := min(le, o.endAtOrBefore(o.wm))
		if lo <= hi {
			if !ks.dirty {
				ks.dirty, ks.dLo, ks.dHi = true, lo, hi
				o.dirty = append(o.dirty, ks)
			} else {
				ks.dLo, ks.dHi = min(ks.dLo, lo), max(ks.dHi, hi)
			}
		}
	} else {
		ks.next = min(ks.next, fe)
	}
	if ks.tsOK && p >= ks.fs && p < ks.be {
		ks.tsOK = false // a pane folded into the two stacks changed
	}
	i := o.paneSlot(ks, p)
	ks.slots[i].c.add(v)
	if ks.xs != nil {
		x := &ks.xs[i]
		if o.pct {
			x.vals = append(x.vals, v)
		}
		for _, a := range x.accs {
			a.Add(v)
		}
	}
	o.paneArm(ks)
	return false
}

// aggNever is a time after every other.
const aggNever = int64(^uint64(0) >> 1)

// paneArm sets ks's due entry: its next window's end, or when it may be
// forgotten.
func (o *Aggregator[T, K]) paneArm(ks *aggKey[K]) {
	le := ks.hiEnd
	if ks.next <= le {
		o.setDue(ks, ks.next)
	} else {
		o.setDue(ks, le+o.lateness)
	}
}

// paneDue fires ks's next window with events, if due, or forgets ks.
// It fires one window at a time and re-arms, so that results come out in
// end order across keys.
func (o *Aggregator[T, K]) paneDue(ks *aggKey[K]) {
	le := ks.hiEnd
	for ks.next <= o.wm && ks.next <= le {
		e := ks.next
		ks.next += o.slide
		if o.paneFire(ks, e, false) {
			break
		}
	}
	if ks.next > le && le+o.lateness <= o.wm {
		o.deactivate(ks)
		return
	}
	o.paneArm(ks)
}

// paneFire emits the window of ks ending at e, if it has events.
func (o *Aggregator[T, K]) paneFire(ks *aggKey[K], e int64, update bool) bool {
	hi := e / o.pw // exact: pw divides slide and size
	lo := hi - o.panesPerWin
	var a *aggState
	if o.panesPerWin == 1 { // tumbling: the pane is the window
		i := lo & ks.mask
		sl := &ks.slots[i]
		if sl.idx != lo || sl.c.n == 0 {
			return false
		}
		a = &o.view
		a.c = sl.c
		if ks.xs != nil {
			a.vals, a.accs = ks.xs[i].vals, ks.xs[i].accs // read (and sorted) in place
		}
	} else {
		a = o.paneMerge(ks, lo, hi, update)
		if a.c.n == 0 {
			return false
		}
	}
	o.result(ks, e-o.size, e, a, update)
	return true
}

// paneMergeAt adds the pane at position i to a.
func (o *Aggregator[T, K]) paneMergeAt(ks *aggKey[K], i int64, a *aggState) {
	a.c.merge(&ks.slots[i].c)
	if ks.xs != nil {
		x := &ks.xs[i]
		a.vals = append(a.vals, x.vals...)
		for j, acc := range a.accs {
			acc.Merge(x.accs[j])
		}
	}
}

// paneMerge returns the aggregate of ks's panes [lo, hi) in o.merged.
//
// Windows that fire in order go through two stacks (a FIFO aggregation
// that needs only an associative merge): the front holds, for each pane p
// in [fs, fl), the suffix aggregate of panes p … fl−1 (sufs and
// xs.sufAccs at p's position); the back holds the aggregate of panes
// [fl, be). A window [lo, hi) with fs ≤ lo < fl is suf(lo) ⊕ back, once
// the back has taken in panes up to hi. When lo passes fl, a flip
// recomputes the suffixes of [lo, hi) and empties the back. A window takes
// S = slide/pw new panes and a flip happens every panesPerWin/S windows,
// so a window costs O(S) merges amortised, not O(panesPerWin): that is
// what keeps the cost flat as the slide shrinks. A change to a folded
// pane (a late event), a ring that grows, and deactivation invalidate the
// stacks (tsOK); the next window flips.
//
// Percentiles (values are not merged by suffix), late updates (windows
// out of order) and sparse keys (fewer slots than panes in a window) merge
// the window's panes directly.
func (o *Aggregator[T, K]) paneMerge(ks *aggKey[K], lo, hi int64, update bool) *aggState {
	a := &o.merged
	a.reset()
	if int64(len(ks.slots)) < o.panesPerWin { // a sparse key: fewer slots than panes
		for i := range ks.slots {
			if idx := ks.slots[i].idx; idx >= lo && idx < hi {
				o.paneMergeAt(ks, int64(i), a)
			}
		}
		return a
	}
	if o.pct || update {
		for p := lo; p < hi; p++ {
			if i := p & ks.mask; ks.slots[i].idx == p {
				o.paneMergeAt(ks, i, a)
			}
		}
		return a
	}
	if !ks.tsOK || lo < ks.fs || lo >= ks.fl || hi < ks.be {
		o.paneFlip(ks, lo, hi)
	} else {
		for p := ks.be; p < hi; p++ {
			i := p & ks.mask
			if ks.slots[i].idx != p {
				continue
			}
			ks.back.c.merge(&ks.slots[i].c)
			if ks.xs != nil {
				for j, acc := range ks.back.accs {
					acc.Merge(ks.xs[i].accs[j])
				}
			}
		}
		ks.be = hi
	}
	i := lo & ks.mask
	a.c = ks.sufs[i]
	a.c.merge(&ks.back.c)
	if ks.xs != nil {
		for j, acc := range a.accs {
			acc.Merge(ks.xs[i].sufAccs[j])
			acc.Merge(ks.back.accs[j])
		}
	}
	return a
}

// paneFlip makes [lo, hi) the front of ks's two stacks, with an empty back.
func (o *Aggregator[T, K]) paneFlip(ks *aggKey[K], lo, hi int64) {
	next := int64(-1)
	for p := hi - 1; p >= lo; p-- {
		i := p & ks.mask
		has := ks.slots[i].idx == p
		if has {
			ks.sufs[i] = ks.slots[i].c
		} else {
			ks.sufs[i] = aggCell{}
		}
		if next >= 0 {
			ks.sufs[i].merge(&ks.sufs[next])
		}
		if ks.xs != nil {
			x := &ks.xs[i]
			for j, acc := range x.sufAccs {
				acc.Reset()
				if has {
					acc.Merge(x.accs[j])
				}
				if next >= 0 {
					acc.Merge(ks.xs[next].sufAccs[j])
				}
			}
		}
		next = i
	}
	if ks.back.accs == nil && o.ncust > 0 {
		ks.back.accs = o.newAccs()
	}
	ks.back.reset()
	ks.fs, ks.fl, ks.be, ks.tsOK = lo, hi, hi, true
}

// paneFlushDirty emits again the open windows of ks that late events
// updated.
func (o *Aggregator[T, K]) paneFlushDirty(ks *aggKey[K]) {
	for e := ks.dLo; e <= ks.dHi; e += o.slide {
		if e+o.lateness > o.wm {
			o.paneFire(ks, e, true)
		}
	}
}

// paneSlot returns the position of pane p, reset if it held a dead pane,
// growing the ring when a live pane holds it.
func (o *Aggregator[T, K]) paneSlot(ks *aggKey[K], p int64) int64 {
	for {
		if len(ks.slots) > 0 {
			i := p & ks.mask
			sl := &ks.slots[i]
			if sl.idx == p {
				return i
			}
			if sl.idx == aggNone || o.paneLastEnd(sl.idx)+o.lateness <= o.wm {
				sl.idx, sl.c = p, aggCell{}
				if ks.xs != nil {
					x := &ks.xs[i]
					x.vals = x.vals[:0]
					for _, acc := range x.accs {
						acc.Reset()
					}
				}
				return i
			}
		}
		o.paneGrow(ks)
	}
}

// paneGrow doubles ks's ring, moving the live panes over.
func (o *Aggregator[T, K]) paneGrow(ks *aggKey[K]) {
	n := max(2*len(ks.slots), 2)
	mask := int64(n - 1)
	slots := make([]aggSlot, n)
	for i := range slots {
		slots[i].idx = aggNone
	}
	var xs []aggSlotX
	if o.pct || o.ncust > 0 {
		xs = make([]aggSlotX, n)
	}
	for i := range ks.slots {
		sl := &ks.slots[i]
		if sl.idx == aggNone || o.paneLastEnd(sl.idx)+o.lateness <= o.wm {
			continue
		}
		j := sl.idx & mask // no two live panes share a slot mod n/2, so none mod n
		slots[j] = *sl
		if xs != nil {
			xs[j].vals, xs[j].accs = ks.xs[i].vals, ks.xs[i].accs
		}
	}
	if o.ncust > 0 {
		for i := range xs {
			if xs[i].accs == nil {
				xs[i].accs = o.newAccs()
			}
			if o.panesPerWin > 1 {
				xs[i].sufAccs = o.newAccs()
			}
		}
	}
	ks.slots, ks.xs, ks.mask = slots, xs, mask
	if o.panesPerWin > 1 {
		ks.sufs = make([]aggCell, n)
	}
	ks.tsOK = false // suffixes did not move with their positions
}

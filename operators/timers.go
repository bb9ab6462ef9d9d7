package operators

// Timed is implemented by operators that schedule timers. OnTimer runs on
// the flow's goroutine with the time the timer was set for and the arg it
// was set with.
type Timed interface {
	OnTimer(when int64, arg uint64)
}

// timer is one scheduled callback. seq breaks ties so timers set for the
// same instant fire in the order they were set.
type timer struct {
	when int64
	seq  uint64
	t    Timed
	arg  uint64
}

// Timers is a flow's timer queue: a binary min-heap of (when, seq) over a
// slice that is reused, so setting a timer allocates nothing once the heap
// has grown to its working size. It is owned by the flow's goroutine.
//
// There is no cancel: an operator that re-arms a timer (a debounce, a
// session window) keeps a generation number in arg and ignores a timer
// whose generation is stale. A stale timer costs one heap entry until it
// fires, so at most one live timer per key and operator is the rule the
// built-ins follow.
type Timers struct {
	heap []timer
	seq  uint64
}

// At schedules t.OnTimer(when, arg) for the first Advance at or after when.
func (ts *Timers) At(when int64, t Timed, arg uint64) {
	ts.seq++
	ts.heap = append(ts.heap, timer{when: when, seq: ts.seq, t: t, arg: arg})
	ts.up(len(ts.heap) - 1)
}

// Len is the number of scheduled timers (stale ones included).
func (ts *Timers) Len() int { return len(ts.heap) }

// Next returns the earliest scheduled time, if any.
func (ts *Timers) Next() (int64, bool) {
	if len(ts.heap) == 0 {
		return 0, false
	}
	return ts.heap[0].when, true
}

// Advance fires, in time order, every timer due at or before now,
// including timers that firing ones set for times ≤ now. It returns how
// many fired.
func (ts *Timers) Advance(now int64) int {
	n := 0
	for len(ts.heap) > 0 && ts.heap[0].when <= now {
		t := ts.heap[0]
		last := len(ts.heap) - 1
		ts.heap[0] = ts.heap[last]
		ts.heap[last] = timer{}
		ts.heap = ts.heap[:last]
		if last > 0 {
			ts.down(0)
		}
		t.t.OnTimer(t.when, t.arg)
		n++
	}
	return n
}

func (ts *Timers) less(i, j int) bool {
	a, b := &ts.heap[i], &ts.heap[j]
	return a.when < b.when || (a.when == b.when && a.seq < b.seq)
}

func (ts *Timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !ts.less(i, p) {
			return
		}
		ts.heap[i], ts.heap[p] = ts.heap[p], ts.heap[i]
		i = p
	}
}

func (ts *Timers) down(i int) {
	n := len(ts.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && ts.less(r, l) {
			m = r
		}
		if !ts.less(m, i) {
			return
		}
		ts.heap[i], ts.heap[m] = ts.heap[m], ts.heap[i]
		i = m
	}
}

package operators

import (
	"math"
	"slices"
)

// Session and count windows.
//
// A key's sessions are sorted by start and never overlap: a session
// [start, last+gap) takes every event whose own [ts, ts+gap) overlaps it,
// and an event that overlaps several joins them into one (out-of-order
// events in event time). A session fires when W ≥ last+gap and is
// forgotten at last+gap+lateness; an event that changes a session that
// fired makes it fire again (at once if W is past its end: it is dirty).
// The key's due entry is at the earliest of its sessions' next times.
//
// A count window is the key's cur state: it fires when it holds Count
// events, and at Flush.

// aggSession is one session of a key.
type aggSession struct {
	start, last int64
	st          *aggState
	fired       bool // the last result emitted is what st holds
	emitted     bool // a result was emitted: the next one is an update
}

// sessionAdd adds v at time ts to k's sessions, or reports that ts is
// too late for every one.
func (o *Aggregator[T, K]) sessionAdd(k K, ts int64, v float64) (late bool) {
	ks := o.keys[k]
	var i, j int // ks.sessions[i:j] overlap [ts, ts+gap)
	if ks != nil && ks.active {
		ss := ks.sessions
		for i < len(ss) && ss[i].last+o.gap <= ts {
			i++
		}
		j = i
		for j < len(ss) && ss[j].start < ts+o.gap {
			j++
		}
	}
	if i == j {
		if ts+o.gap+o.lateness <= o.wm {
			return true
		}
		if ks == nil || !ks.active {
			ks = o.key(k)
			ks.sessions = ks.sessions[:0]
		}
		ks.sessions = slices.Insert(ks.sessions, i, aggSession{start: ts, last: ts, st: o.getState()})
		j = i + 1
	}
	s := &ks.sessions[i]
	for m := i + 1; m < j; m++ {
		t := &ks.sessions[m]
		s.st.merge(t.st)
		s.last = max(s.last, t.last)
		s.emitted = s.emitted || t.emitted
		o.putState(t.st)
	}
	if j > i+1 {
		ks.sessions = slices.Delete(ks.sessions, i+1, j)
		s = &ks.sessions[i]
	}
	s.start = min(s.start, ts)
	s.last = max(s.last, ts)
	s.st.add(v, o.pct)
	s.fired = false
	if s.last+o.gap <= o.wm && !ks.dirty { // it fired: emit it again
		ks.dirty = true
		o.dirty = append(o.dirty, ks)
	}
	o.sessionArm(ks)
	return false
}

// sessionArm sets ks's due entry at the earliest time one of its sessions
// fires or is forgotten.
func (o *Aggregator[T, K]) sessionArm(ks *aggKey[K]) {
	if len(ks.sessions) == 0 {
		return
	}
	t := int64(math.MaxInt64)
	for i := range ks.sessions {
		s := &ks.sessions[i]
		end := s.last + o.gap
		if s.fired {
			end += o.lateness
		}
		t = min(t, end)
	}
	o.setDue(ks, t)
}

// sessionDue fires ks's sessions that ended and forgets those past their
// lateness, and ks itself when none is left.
func (o *Aggregator[T, K]) sessionDue(ks *aggKey[K]) {
	ss := ks.sessions
	n := 0
	for i := range ss {
		s := &ss[i]
		end := s.last + o.gap
		if !s.fired && end <= o.wm {
			o.result(ks, s.start, end, s.st, s.emitted)
			s.fired, s.emitted = true, true
		}
		if s.fired && end+o.lateness <= o.wm {
			o.putState(s.st)
			continue
		}
		ss[n] = *s
		n++
	}
	clear(ss[n:])
	ks.sessions = ss[:n]
	if n == 0 {
		o.deactivate(ks)
		return
	}
	o.sessionArm(ks)
}

// sessionFlushDirty emits again the sessions of ks that late events changed.
func (o *Aggregator[T, K]) sessionFlushDirty(ks *aggKey[K]) {
	for i := range ks.sessions {
		s := &ks.sessions[i]
		if end := s.last + o.gap; !s.fired && end <= o.wm {
			o.result(ks, s.start, end, s.st, true)
			s.fired, s.emitted = true, true
		}
	}
}

// getState returns an empty state for a session.
func (o *Aggregator[T, K]) getState() *aggState {
	if n := len(o.pool); n > 0 {
		st := o.pool[n-1]
		o.pool[n-1] = nil
		o.pool = o.pool[:n-1]
		return st
	}
	return &aggState{accs: o.newAccs()}
}

// putState keeps st for reuse.
func (o *Aggregator[T, K]) putState(st *aggState) {
	st.reset()
	o.pool = append(o.pool, st)
}

// countAdd adds v at time ts to k's count window, firing it when full.
func (o *Aggregator[T, K]) countAdd(k K, ts int64, v float64) {
	ks := o.keys[k]
	if ks == nil || !ks.active {
		ks = o.key(k)
		ks.cur.reset()
		ks.first, ks.last = ts, ts
	}
	ks.cur.add(v, o.pct)
	ks.first, ks.last = min(ks.first, ts), max(ks.last, ts)
	if ks.cur.c.n == o.count {
		o.countFire(ks)
	}
}

// countFire emits ks's count window and empties it.
func (o *Aggregator[T, K]) countFire(ks *aggKey[K]) {
	o.result(ks, ks.first, ks.last, &ks.cur, false)
	o.deactivate(ks)
}

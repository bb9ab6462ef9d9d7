package loadtest

import "bytes"

// Seq accounting (fanout --count, --slow-read): every subscriber checks
// each seq of its room against what it saw before, so that a run can say
// exactly what each member got. A seq is either delivered (a `message`),
// or covered by a gap notice ({"type":"gap","room":R,"from":N,"to":M},
// what a backpressure policy sends for the messages it dropped), once,
// in order; anything else is counted as a fault.

// seqAcct is one member's account of its room. Worker-owned.
type seqAcct struct {
	base        int64 // the room's seq when the member joined
	covered     int64 // highest seq delivered or inside a gap notice
	delivered   int64 // messages received
	gapped      int64 // seqs inside gap notices
	gapNotices  int64 // gap notices received
	dups        int64 // seqs received (or announced) a second time
	unannounced int64 // seqs skipped with no gap notice
	misplaced   int64 // gap notices that did not start right after covered
}

var (
	gapPrefix  = []byte(`{"type":"gap"`)
	fromMarker = []byte(`"from":`)
	toMarker   = []byte(`"to":`)
)

// message accounts one delivered seq.
func (a *seqAcct) message(seq int64) {
	switch {
	case seq <= a.covered:
		a.dups++
		return
	case seq > a.covered+1:
		a.unannounced += seq - a.covered - 1
	}
	a.covered = seq
	a.delivered++
}

// gap accounts a gap notice for from..to.
func (a *seqAcct) gap(from, to int64) {
	a.gapNotices++
	if to < from {
		a.misplaced++
		return
	}
	if from != a.covered+1 {
		a.misplaced++
	}
	if from <= a.covered { // overlaps what was covered: those seqs twice
		a.dups += min(to, a.covered) - from + 1
		from = a.covered + 1
	} else if from > a.covered+1 {
		a.unannounced += from - a.covered - 1
	}
	if to >= from {
		a.gapped += to - from + 1
		a.covered = to
	}
}

// frame accounts one server frame p (a message or a gap notice; others
// are ignored). It reports whether p was a message or gap.
func (a *seqAcct) frame(p []byte) bool {
	switch {
	case bytes.HasPrefix(p, msgPrefix):
		if seq, ok := jsonInt(p, seqMarker); ok {
			a.message(seq)
		}
		return true
	case bytes.HasPrefix(p, gapPrefix):
		from, ok1 := jsonInt(p, fromMarker)
		to, ok2 := jsonInt(p, toMarker)
		if ok1 && ok2 {
			a.gap(from, to)
		} else {
			a.misplaced++
		}
		return true
	}
	return false
}

// complete reports whether every seq of base+1 … base+published was
// delivered or announced in a gap, once, in order.
func (a *seqAcct) complete(published int64) bool {
	return a.delivered+a.gapped == published && a.covered == a.base+published &&
		a.dups == 0 && a.unannounced == 0 && a.misplaced == 0
}

// SeqGroup sums the accounts of a group of members (fast or slow).
type SeqGroup struct {
	Members     int   `json:"members"`
	Complete    int   `json:"complete"` // members whose every seq was delivered or announced once, in order
	Delivered   int64 `json:"delivered"`
	Gapped      int64 `json:"gapped"` // seqs covered by gap notices
	GapNotices  int64 `json:"gap_notices"`
	Dups        int64 `json:"duplicates"`
	Unannounced int64 `json:"unannounced"` // seqs missing with no gap notice
	Misplaced   int64 `json:"misplaced_gaps"`
	Closed      int   `json:"closed"` // members whose connection ended during the run
}

func (g *SeqGroup) add(a *seqAcct, published int64, closed bool) {
	g.Members++
	if a.complete(published) && !closed {
		g.Complete++
	}
	if closed {
		g.Closed++
	}
	g.Delivered += a.delivered
	g.Gapped += a.gapped
	g.GapNotices += a.gapNotices
	g.Dups += a.dups
	g.Unannounced += a.unannounced
	g.Misplaced += a.misplaced
}

// SeqReport is the exact count of a fanout run with --count: what each
// subscriber got of the room's Published seqs.
type SeqReport struct {
	Published int64    `json:"published"` // seqs published into the room (warm-up included)
	Fast      SeqGroup `json:"fast"`
	Slow      SeqGroup `json:"slow"`
	// With --admin: the engine's backpressure_dropped and gap_notices
	// over the run, and whether they equal what the members counted.
	EngineDropped    *uint64 `json:"engine_backpressure_dropped,omitempty"`
	EngineGapNotices *uint64 `json:"engine_gap_notices,omitempty"`
	DropsMatch       *bool   `json:"drops_match,omitempty"`
}

// Exact reports whether every member accounted for every seq: fast ones
// got all of them, slow ones got or were told of each, once, in order.
func (r *SeqReport) Exact() bool {
	return r.Fast.Complete == r.Fast.Members && r.Slow.Complete == r.Slow.Members &&
		r.Fast.Delivered == int64(r.Fast.Members)*r.Published && r.Fast.Gapped == 0
}

// seqReport sums every accounted member after a run (workers stopped).
// Published is what the publishers wrote whole: frames still queued in a
// publisher's buffer at the end never reached the room.
func seqReport(workers []*worker) *SeqReport {
	r := &SeqReport{}
	for _, w := range workers {
		r.Published += w.sent.Load()
		for _, c := range w.senders {
			if fl := len(c.frame); fl > 0 && len(c.out) > 0 {
				r.Published -= int64((len(c.out) + fl - 1) / fl)
			}
		}
	}
	for _, w := range workers {
		for _, c := range w.byFD {
			if c.acct == nil {
				continue
			}
			g := &r.Fast
			if c.readRate > 0 {
				g = &r.Slow
			}
			g.add(c.acct, r.Published, c.closed)
		}
	}
	return r
}

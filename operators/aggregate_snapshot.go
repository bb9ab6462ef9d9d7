package operators

import (
	"cmp"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Checkpoints of an aggregator (the state issue: windows survive a
// restart). Snapshot writes what the open windows hold — per active key,
// the live panes of tumbling and sliding windows, the sessions, or the
// count window — and the watermark; Restore puts it back into a fresh
// aggregator with the same options. Derived state (the two stacks of
// sliding windows, the due calendar, the pane cache) is rebuilt, not
// saved, so the format does not depend on how fast paths are laid out.
//
// The encoding is a version byte, then varints and little-endian floats.
// Custom functions are saved when their accumulators implement
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler; otherwise
// Snapshot fails and says which.

const snapVersion = 1

// ErrSnapshotMismatch is returned by Restore for a snapshot taken by an
// aggregator with another window kind or other functions.
var ErrSnapshotMismatch = errors.New("operators: the snapshot was taken with other aggregate options")

// Snapshot appends the aggregator's open windows to dst. appendKey
// encodes a key. Flow goroutine only.
func (o *Aggregator[T, K]) Snapshot(dst []byte, appendKey func(dst []byte, k K) []byte) ([]byte, error) {
	dst = append(dst, snapVersion, byte(o.kind), byte(len(o.fns)))
	for i := range o.fns {
		dst = binary.AppendUvarint(dst, uint64(len(o.fns[i].Name)))
		dst = append(dst, o.fns[i].Name...)
	}
	dst = binary.AppendVarint(dst, o.wm)
	order := o.snapOrder()
	dst = binary.AppendUvarint(dst, uint64(len(order)))
	var (
		err error
		kb  []byte
	)
	for _, ks := range order {
		kb = appendKey(kb[:0], ks.key)
		dst = binary.AppendUvarint(dst, uint64(len(kb)))
		dst = append(dst, kb...)
		dst = binary.AppendVarint(dst, ks.dueAt)
		switch o.kind {
		case TumblingWindow, SlidingWindow:
			dst = binary.AppendVarint(dst, ks.hi)
			dst = binary.AppendVarint(dst, ks.hiEnd)
			dst = binary.AppendVarint(dst, ks.next)
			dst = binary.AppendVarint(dst, ks.dLo)
			dst = binary.AppendVarint(dst, ks.dHi)
			live := 0
			for i := range ks.slots {
				if o.slotLive(&ks.slots[i]) {
					live++
				}
			}
			dst = binary.AppendUvarint(dst, uint64(live))
			for i := range ks.slots {
				sl := &ks.slots[i]
				if !o.slotLive(sl) {
					continue
				}
				dst = binary.AppendVarint(dst, sl.idx)
				st := aggState{c: sl.c}
				if ks.xs != nil {
					st.vals, st.accs = ks.xs[i].vals, ks.xs[i].accs
				}
				if dst, err = o.appendState(dst, &st); err != nil {
					return nil, err
				}
			}
		case SessionWindow:
			dst = binary.AppendUvarint(dst, uint64(len(ks.sessions)))
			for i := range ks.sessions {
				s := &ks.sessions[i]
				dst = binary.AppendVarint(dst, s.start)
				dst = binary.AppendVarint(dst, s.last)
				var fl byte
				if s.fired {
					fl |= 1
				}
				if s.emitted {
					fl |= 2
				}
				dst = append(dst, fl)
				if dst, err = o.appendState(dst, s.st); err != nil {
					return nil, err
				}
			}
		case CountWindow:
			dst = binary.AppendVarint(dst, ks.first)
			dst = binary.AppendVarint(dst, ks.last)
			if dst, err = o.appendState(dst, &ks.cur); err != nil {
				return nil, err
			}
		}
	}
	// the keys with late updates to emit, in the order they got them
	idx := make(map[*aggKey[K]]int, len(order))
	for i, ks := range order {
		idx[ks] = i
	}
	dst = binary.AppendUvarint(dst, uint64(len(o.dirty)))
	for _, ks := range o.dirty {
		dst = binary.AppendUvarint(dst, uint64(idx[ks]))
	}
	return dst, nil
}

// snapOrder returns the active keys in the order their windows fire:
// by due time, then in the order they were scheduled for it (so that a
// restored aggregator, scheduling them in this order, emits windows that
// end together in the same order as the original).
func (o *Aggregator[T, K]) snapOrder() []*aggKey[K] {
	type at struct {
		when int64
		arg  uint64
	}
	pos := make(map[at]int)
	for when, b := range o.due.byTime {
		for i, arg := range o.due.buckets[b] {
			if _, ok := pos[at{when, arg}]; !ok {
				pos[at{when, arg}] = i
			}
		}
	}
	var order []*aggKey[K]
	for _, ks := range o.keys {
		if ks.active {
			order = append(order, ks)
		}
	}
	rank := func(ks *aggKey[K]) (int64, int) {
		if ks.dueAt == aggNone {
			return math.MaxInt64, int(ks.id)
		}
		return ks.dueAt, pos[at{ks.dueAt, uint64(ks.id)<<32 | uint64(ks.gen)}]
	}
	slices.SortFunc(order, func(a, b *aggKey[K]) int {
		ta, pa := rank(a)
		tb, pb := rank(b)
		if ta != tb {
			return cmp.Compare(ta, tb)
		}
		return cmp.Compare(pa, pb)
	})
	return order
}

// slotLive reports whether a ring slot holds a pane one of whose windows
// is not forgotten.
func (o *Aggregator[T, K]) slotLive(sl *aggSlot) bool {
	return sl.idx != aggNone && o.paneLastEnd(sl.idx)+o.lateness > o.wm
}

func (o *Aggregator[T, K]) appendState(dst []byte, st *aggState) ([]byte, error) {
	dst = binary.AppendVarint(dst, st.c.n)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.c.sum))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.c.min))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.c.max))
	if o.pct {
		dst = binary.AppendUvarint(dst, uint64(len(st.vals)))
		for _, v := range st.vals {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	}
	for i, a := range st.accs {
		m, ok := a.(encoding.BinaryMarshaler)
		if !ok {
			return nil, fmt.Errorf("operators: aggregate %q: custom function %d (%T) cannot be checkpointed: its Accumulator does not implement encoding.BinaryMarshaler", o.stats.Name, i, a)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("operators: aggregate %q: custom function %d: %w", o.stats.Name, i, err)
		}
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	return dst, nil
}

// snapReader reads a snapshot; the first error sticks.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail() {
	if r.err == nil {
		r.err = errors.New("operators: truncated or corrupt aggregate snapshot")
	}
}

func (r *snapReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) byte1() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *snapReader) float() float64 {
	if len(r.b) < 8 {
		r.fail()
		r.b = nil
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *snapReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		r.b = nil
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// count reads a length that each item of which takes at least one byte.
func (r *snapReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		r.b = nil
		return 0
	}
	return int(n)
}

func (o *Aggregator[T, K]) readState(r *snapReader, st *aggState) {
	st.c.n = r.varint()
	st.c.sum, st.c.min, st.c.max = r.float(), r.float(), r.float()
	if o.pct {
		n := r.count()
		st.vals = st.vals[:0]
		for range n {
			st.vals = append(st.vals, r.float())
		}
	}
	for i, a := range st.accs {
		b := r.bytes()
		if r.err != nil {
			return
		}
		u, ok := a.(encoding.BinaryUnmarshaler)
		if !ok {
			r.err = fmt.Errorf("operators: aggregate %q: custom function %d (%T) cannot be restored: it does not implement encoding.BinaryUnmarshaler", o.stats.Name, i, a)
			return
		}
		if err := u.UnmarshalBinary(b); err != nil {
			r.err = fmt.Errorf("operators: aggregate %q: custom function %d: %w", o.stats.Name, i, err)
			return
		}
	}
}

// Restore loads a snapshot into an aggregator that holds nothing yet (a
// new one, built with the options of the one that took it). decodeKey
// decodes a key written by Snapshot's appendKey. On error the aggregator
// is left empty. Flow goroutine only.
func (o *Aggregator[T, K]) Restore(snap []byte, decodeKey func([]byte) (K, error)) error {
	if len(o.keys) != 0 {
		return fmt.Errorf("operators: aggregate %q: Restore into an aggregator that holds windows", o.stats.Name)
	}
	err := o.restore(snap, decodeKey)
	if err != nil {
		o.reset()
		return err
	}
	o.arm()
	return nil
}

func (o *Aggregator[T, K]) restore(snap []byte, decodeKey func([]byte) (K, error)) error {
	r := &snapReader{b: snap}
	if v := r.byte1(); r.err == nil && v != snapVersion {
		return fmt.Errorf("operators: aggregate snapshot version %d; this build reads version %d", v, snapVersion)
	}
	if WindowKind(r.byte1()) != o.kind || int(r.byte1()) != len(o.fns) {
		return errors.Join(r.err, ErrSnapshotMismatch)
	}
	for i := range o.fns {
		if string(r.bytes()) != o.fns[i].Name {
			return errors.Join(r.err, ErrSnapshotMismatch)
		}
	}
	o.wm = r.varint()
	nk := r.count()
	restored := make([]*aggKey[K], 0, nk)
	for range nk {
		k, err := decodeKey(r.bytes())
		if r.err != nil {
			return r.err
		}
		if err != nil {
			return fmt.Errorf("operators: aggregate %q: snapshot key: %w", o.stats.Name, err)
		}
		ks := o.key(k)
		restored = append(restored, ks)
		dueAt := r.varint()
		switch o.kind {
		case TumblingWindow, SlidingWindow:
			ks.hi, ks.hiEnd, ks.next = r.varint(), r.varint(), r.varint()
			ks.dLo, ks.dHi = r.varint(), r.varint()
			np := r.count()
			for range np {
				p := r.varint()
				if r.err != nil {
					return r.err
				}
				i := o.paneSlot(ks, p)
				st := aggState{}
				if ks.xs != nil {
					st.vals, st.accs = ks.xs[i].vals[:0], ks.xs[i].accs
				}
				o.readState(r, &st)
				ks.slots[i].c = st.c
				if ks.xs != nil {
					ks.xs[i].vals = st.vals
				}
			}
		case SessionWindow:
			ns := r.count()
			ks.sessions = ks.sessions[:0]
			for range ns {
				s := aggSession{start: r.varint(), last: r.varint()}
				fl := r.byte1()
				s.fired, s.emitted = fl&1 != 0, fl&2 != 0
				s.st = o.getState()
				o.readState(r, s.st)
				if r.err != nil {
					return r.err
				}
				ks.sessions = append(ks.sessions, s)
			}
		case CountWindow:
			ks.first, ks.last = r.varint(), r.varint()
			ks.cur.reset()
			o.readState(r, &ks.cur)
		}
		if r.err != nil {
			return r.err
		}
		// The due entry the original had: keys come in firing order,
		// so the calendar is rebuilt as it was.
		if dueAt != aggNone {
			o.setDue(ks, dueAt)
		}
	}
	nd := r.count()
	for range nd {
		i := r.uvarint()
		if r.err != nil {
			return r.err
		}
		if i >= uint64(len(restored)) || restored[i].dirty {
			r.fail()
			return r.err
		}
		restored[i].dirty = true
		o.dirty = append(o.dirty, restored[i])
	}
	if r.err == nil && len(r.b) != 0 {
		return errors.New("operators: aggregate snapshot has trailing bytes")
	}
	return r.err
}

// reset forgets every window (a failed Restore); the ports, stats and
// options stay.
func (o *Aggregator[T, K]) reset() {
	o.wm, o.armed = aggNone, aggNone
	o.tgen++
	o.keys = make(map[K]*aggKey[K])
	o.states, o.gens, o.free, o.ids, o.idle = nil, nil, nil, nil, 0
	o.due = aggCalendar{}
	o.due.init(o.onDue)
	o.pc = aggPaneCache{}
	o.dirty, o.pool = nil, nil
}

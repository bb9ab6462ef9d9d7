package operators

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// snapSpread is spreadAcc that can be checkpointed.
type snapSpread struct{ spreadAcc }

func (a *snapSpread) Merge(o Accumulator) { a.spreadAcc.Merge(&o.(*snapSpread).spreadAcc) }

func (a *snapSpread) MarshalBinary() ([]byte, error) {
	b := binary.LittleEndian.AppendUint64(nil, math.Float64bits(a.lo))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.hi))
	return binary.AppendVarint(b, int64(a.n)), nil
}

func (a *snapSpread) UnmarshalBinary(b []byte) error {
	if len(b) < 17 {
		return errors.New("short")
	}
	a.lo = math.Float64frombits(binary.LittleEndian.Uint64(b))
	a.hi = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	n, _ := binary.Varint(b[16:])
	a.n = int(n)
	return nil
}

func appendStrKey(dst []byte, k string) []byte { return append(dst, k...) }
func decodeStrKey(b []byte) (string, error)    { return string(b), nil }

// TestAggregateSnapshotRestore: an aggregator restored from a snapshot
// taken at a random point emits, from then on, exactly what the original
// emits for the same events, for every window kind, in event time and in
// processing time, with percentiles and checkpointable custom functions.
func TestAggregateSnapshotRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	kinds := []func() WindowSpec{
		func() WindowSpec { return Tumbling(time.Duration(1 + rng.IntN(20))) },
		func() WindowSpec {
			size := 1 + rng.IntN(20)
			return Sliding(time.Duration(size), time.Duration(1+rng.IntN(size)))
		},
		func() WindowSpec { return Session(time.Duration(1 + rng.IntN(10))) },
		func() WindowSpec { return EveryN(1 + rng.IntN(7)) },
	}
	for round := range 400 {
		spec := kinds[round%4]()
		eventTime := round%8 < 4
		fns := []AggFn{AggCount(), AggSum(), AggMin(), AggMax(), AggAvg()}
		switch round % 3 {
		case 1:
			fns = append(fns, AggCustom("spread", func() Accumulator { return new(snapSpread) }))
		case 2:
			fns = append(fns, AggPercentile(90))
		}
		opts := AggregateOptions[aggEv, string]{
			Window: spec,
			Key:    func(e aggEv) string { return e.Key },
			Value:  func(e aggEv) float64 { return e.V },
			Fns:    fns,
		}
		if eventTime {
			opts.EventTime = func(e aggEv) int64 { return e.T }
			if spec.Kind != CountWindow {
				opts.OutOfOrder = time.Duration(rng.IntN(5))
				opts.AllowedLateness = time.Duration(rng.IntN(6))
			}
		}
		n := 1 + rng.IntN(150)
		evs := make([]aggEv, n)
		tmax := int64(0)
		for i := range evs {
			tmax += int64(rng.IntN(4))
			evs[i] = aggEv{Key: string(rune('a' + rng.IntN(4))), T: tmax - int64(rng.IntN(15)), V: float64(rng.IntN(100))}
		}
		cut := rng.IntN(n + 1)
		name := fmt.Sprintf("round %d: %+v eventTime=%v cut=%d/%d", round, spec, eventTime, cut, n)

		run := func(a *Aggregator[aggEv, string], f *Flow, clk *FakeClock, from int, got *[]string) {
			for _, e := range evs[from:] {
				if !eventTime {
					clk.Set(max(clk.Now(), e.T+100)) // processing time follows the events, roughly
					f.Advance()
				}
				a.Push([]aggEv{e})
			}
			if !eventTime {
				clk.Add(time.Hour)
				f.Advance()
			}
			a.Flush()
		}
		newAgg := func(got *[]string) (*Aggregator[aggEv, string], *Flow, *FakeClock) {
			clk := NewFakeClock(time.Unix(0, 0))
			f := NewFlow(FlowOptions{Clock: clk})
			a, err := NewAggregator("agg", opts)
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Add(a)
			a.Out.Connect(InletFunc[WindowResult[string]](func(b []WindowResult[string]) {
				for _, r := range b {
					*got = append(*got, fmt.Sprintf("%s [%d,%d) %v %v", r.Key, r.Start, r.End, r.Values, r.Update))
				}
			}))
			if err := f.Open(); err != nil {
				t.Fatal(err)
			}
			return a, f, clk
		}

		var gotA, gotB []string
		a, fa, clkA := newAgg(&gotA)
		for _, e := range evs[:cut] {
			if !eventTime {
				clkA.Set(max(clkA.Now(), e.T+100))
				fa.Advance()
			}
			a.Push([]aggEv{e})
		}
		snap, err := a.Snapshot(nil, appendStrKey)
		if err != nil {
			t.Fatalf("%s: Snapshot: %v", name, err)
		}
		gotA = gotA[:0]
		b, fb, clkB := newAgg(&gotB)
		clkB.Set(clkA.Now())
		if err := b.Restore(snap, decodeStrKey); err != nil {
			t.Fatalf("%s: Restore: %v", name, err)
		}
		// A snapshot of the restored aggregator says the same (keys may
		// come in another order, so compare sizes).
		if again, _ := b.Snapshot(nil, appendStrKey); len(again) != len(snap) {
			t.Errorf("%s: re-snapshot is %d bytes, first was %d", name, len(again), len(snap))
		}
		run(a, fa, clkA, cut, &gotA)
		run(b, fb, clkB, cut, &gotB)
		// Per key, the results must be the same sequence. (Across keys,
		// windows that end at the same time may come in another order: the
		// restored aggregator schedules its keys anew.)
		byKey := func(got []string) map[string][]string {
			m := map[string][]string{}
			for _, g := range got {
				k, _, _ := strings.Cut(g, " ")
				m[k] = append(m[k], g)
			}
			return m
		}
		if ka, kb := byKey(gotA), byKey(gotB); !reflect.DeepEqual(ka, kb) {
			for k := range ka {
				if !reflect.DeepEqual(ka[k], kb[k]) {
					t.Fatalf("%s: key %s:\noriginal emitted %q\nrestored emitted %q", name, k, ka[k], kb[k])
				}
			}
			t.Fatalf("%s: restored emitted keys the original did not: %v", name, kb)
		}
	}
}

// TestAggregateSnapshotErrors: a snapshot for other options, a corrupt
// one and a custom function that cannot be saved are refused clearly, and
// a failed Restore leaves the aggregator empty and usable.
func TestAggregateSnapshotErrors(t *testing.T) {
	mk := func(spec WindowSpec, fns ...AggFn) *Aggregator[aggEv, string] {
		a, err := NewAggregator("agg", AggregateOptions[aggEv, string]{
			Window: spec, Key: func(e aggEv) string { return e.Key }, Value: func(e aggEv) float64 { return e.V },
			Fns: fns, EventTime: func(e aggEv) int64 { return e.T },
		})
		if err != nil {
			t.Fatal(err)
		}
		f := NewFlow(FlowOptions{Clock: NewFakeClock(time.Unix(0, 0))})
		_ = f.Add(a)
		_ = f.Open()
		return a
	}
	a := mk(Tumbling(10), AggCount())
	a.Push([]aggEv{{Key: "x", T: 1, V: 1}, {Key: "y", T: 2, V: 2}})
	snap, err := a.Snapshot(nil, appendStrKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := mk(Tumbling(10), AggSum()).Restore(snap, decodeStrKey); !errors.Is(err, ErrSnapshotMismatch) {
		t.Errorf("other fns: %v", err)
	}
	if err := mk(Session(10), AggCount()).Restore(snap, decodeStrKey); !errors.Is(err, ErrSnapshotMismatch) {
		t.Errorf("other window kind: %v", err)
	}
	for cut := 0; cut < len(snap); cut++ {
		b := mk(Tumbling(10), AggCount())
		if err := b.Restore(snap[:cut], decodeStrKey); err == nil {
			t.Fatalf("a snapshot cut at %d/%d was accepted", cut, len(snap))
		}
		// still usable, and empty
		var got []WindowResult[string]
		b.Out.Connect(InletFunc[WindowResult[string]](func(r []WindowResult[string]) { got = append(got, r...) }))
		b.Push([]aggEv{{Key: "z", T: 1, V: 1}})
		b.Flush()
		if len(got) != 1 || got[0].Key != "z" || got[0].Count != 1 {
			t.Fatalf("after a failed restore (cut %d): %+v", cut, got)
		}
	}
	c := mk(Tumbling(10), AggCustom("spread", func() Accumulator { return new(spreadAcc) }))
	c.Push([]aggEv{{Key: "x", T: 1, V: 1}})
	if _, err := c.Snapshot(nil, appendStrKey); err == nil {
		t.Error("a custom accumulator without MarshalBinary was snapshotted")
	}
}

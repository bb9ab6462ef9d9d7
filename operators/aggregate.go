package operators

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the aggregate operator's API (options, functions,
// results), its state shared by every window kind and its lifecycle.
// aggregate_panes.go runs tumbling and sliding windows on panes,
// aggregate_session.go session and count windows.
//
// # Time and watermark
//
// The aggregator keeps one watermark W, the time up to which windows are
// complete. In processing time W is the flow's clock; in event time it is
// max(event time seen) − OutOfOrder, and it only moves forward. It is
// moved before each event is looked at (not once per batch), so what an
// aggregator emits does not depend on how its input was cut into batches,
// except for how late updates are coalesced.
//
// A window [Start, End) fires when W ≥ End. It stays open for late events
// until W ≥ End + AllowedLateness and is then forgotten. An event whose
// windows are all forgotten goes to the "late" output.
//
// # Per-key deadlines
//
// Every active key has at most one live entry in the aggregator's own
// timer queue (due, an aggCalendar), on W's time line: the end of its next
// window to fire or, once all have fired, the time it may be forgotten.
// Entries are never cancelled: one whose time is not the key's dueAt, or
// whose generation is not the key's (its id changed owner), is stale and
// ignored. due is advanced whenever W moves; in processing time one flow
// timer is armed at due's earliest time, so Flow.Advance drives it.
//
// Keys that hold nothing are deactivated, and forgotten by a sweep once
// they outnumber the active ones (and aggIdleKeys); their states, rings
// included, are reused for new keys, so a steady key set allocates
// nothing.

// AggFn is one aggregate function of a window: a name, used as the
// result's field name, and what it computes. Build one with AggCount,
// AggSum, AggAvg, AggMin, AggMax, AggPercentile, AggCustom or ParseAggFn.
type AggFn struct {
	// Name names the function's value in results: "count", "sum", "avg",
	// "min", "max", "p99", or a custom function's name.
	Name string
	kind aggKind
	p    float64            // percentile, in (0, 100]
	newA func() Accumulator // custom
	slot int                // custom: index in aggState.accs (set by the aggregator)
}

type aggKind uint8

const (
	aggCount aggKind = iota + 1
	aggSum
	aggAvg
	aggMin
	aggMax
	aggPercentile
	aggCustom
)

// AggCount is the number of events in the window (also in
// WindowResult.Count; as a function it gets a named field).
func AggCount() AggFn { return AggFn{Name: "count", kind: aggCount} }

// AggSum is the sum of the window's values.
func AggSum() AggFn { return AggFn{Name: "sum", kind: aggSum} }

// AggAvg is the mean of the window's values.
func AggAvg() AggFn { return AggFn{Name: "avg", kind: aggAvg} }

// AggMin is the smallest of the window's values.
func AggMin() AggFn { return AggFn{Name: "min", kind: aggMin} }

// AggMax is the largest of the window's values.
func AggMax() AggFn { return AggFn{Name: "max", kind: aggMax} }

// AggPercentile is the p-th percentile (0 < p ≤ 100) of the window's
// values, named "p" and p ("p50", "p99", "p99.9"). It is exact, by
// nearest rank: the smallest value v such that at least p% of the values
// are ≤ v. Exactness has a price: windows with a percentile keep every
// value they aggregate (8 bytes an event) and sort them when they fire,
// so a sliding window re-sorts each value size/slide times. For large
// windows, a custom function with a sketch is the cheaper choice.
func AggPercentile(p float64) AggFn {
	return AggFn{Name: "p" + strconv.FormatFloat(p, 'f', -1, 64), kind: aggPercentile, p: p}
}

// AggCustom is a user-defined function called name; newAcc returns an
// empty accumulator. The aggregator makes accumulators when a key's
// state grows (never per event) and reuses them through Reset.
func AggCustom(name string, newAcc func() Accumulator) AggFn {
	return AggFn{Name: name, kind: aggCustom, newA: newAcc}
}

// ParseAggFn returns the built-in function called name: "count", "sum",
// "avg" (or "mean"), "min", "max", or "p" and a percentile ("p50",
// "p99.9").
func ParseAggFn(name string) (AggFn, error) {
	switch name {
	case "count":
		return AggCount(), nil
	case "sum":
		return AggSum(), nil
	case "avg", "mean":
		fn := AggAvg()
		fn.Name = name
		return fn, nil
	case "min":
		return AggMin(), nil
	case "max":
		return AggMax(), nil
	}
	if rest, ok := strings.CutPrefix(name, "p"); ok {
		if p, err := strconv.ParseFloat(rest, 64); err == nil && p > 0 && p <= 100 {
			fn := AggPercentile(p)
			fn.Name = name
			return fn, nil
		}
	}
	return AggFn{}, fmt.Errorf("operators: unknown aggregate function %q (want count, sum, avg, min, max, or p and a percentile such as p99)", name)
}

// Accumulator is a custom aggregate function's state over one pane,
// session or count window. The aggregator adds a window's values to it
// with Add, combines the pane accumulators of a sliding window with Merge,
// reads Result when the window fires, and Reset makes it empty for reuse.
//
// Merge(other) adds what other holds to the receiver; other was made by
// the same constructor, and must not be kept or changed. Merge must be
// associative and commutative: panes are merged in no particular order.
// All four run on the flow's goroutine.
//
//	type rangeAcc struct{ lo, hi float64; n int }
//	func (a *rangeAcc) Add(v float64)  { if a.n == 0 || v < a.lo { a.lo = v }; if a.n == 0 || v > a.hi { a.hi = v }; a.n++ }
//	func (a *rangeAcc) Merge(o operators.Accumulator) { b := o.(*rangeAcc); if b.n > 0 { a.Add(b.lo); a.Add(b.hi); a.n += b.n - 2 } }
//	func (a *rangeAcc) Result() float64 { return a.hi - a.lo }
//	func (a *rangeAcc) Reset()          { *a = rangeAcc{} }
type Accumulator interface {
	Add(v float64)
	Merge(other Accumulator)
	Result() float64
	Reset()
}

// WindowResult is one window's aggregate for one key.
//
// For tumbling and sliding windows [Start, End) are the window's bounds;
// for session windows Start is the first event's time and End the last
// one's plus the gap; for count windows, Start and End are the smallest
// and the largest time of the window's events (both included). Times are
// Unix nanoseconds (event time, or the flow's clock).
//
// Values holds one value per function, in AggregateOptions.Fns order, and
// Names (shared by every result of an aggregator; do not modify) their
// names. A result, Values included, may be kept as it is: Values is never
// written again once emitted.
type WindowResult[K comparable] struct {
	// Key is the group key (AggregateOptions.Key).
	Key K
	// Start and End bound the window, in Unix nanoseconds (see above).
	Start, End int64
	// Count is the number of events in the window.
	Count int64
	// Value is Values[0], for the common case of one function.
	Value float64
	// Values are the functions' values, in AggregateOptions.Fns order.
	Values []float64
	// Names are the functions' names, shared: do not modify.
	Names []string
	// Update is true for a result that late events (event time, within
	// AllowedLateness) caused after the window's end had passed: it
	// replaces the window's earlier result, if there was one, so
	// consumers upsert by (Key, Start, End). A late event that extends
	// or joins sessions gives an update whose Start or End differ from
	// the result it replaces.
	Update bool
}

// Get returns the value of the function called name.
func (r WindowResult[K]) Get(name string) (float64, bool) {
	for i, n := range r.Names {
		if n == name {
			return r.Values[i], true
		}
	}
	return 0, false
}

// AggregateOptions configures an Aggregator. Window is required, and
// Value unless every function is AggCount; the other fields have
// defaults.
type AggregateOptions[T any, K comparable] struct {
	// Window is the kind and size of the windows: Tumbling, Sliding,
	// Session or EveryN. Required.
	Window WindowSpec
	// Key returns an event's group key; each key has its own windows.
	// Default (nil): one group, keyed by K's zero value.
	Key func(T) K
	// Value returns the number an event contributes. An event whose
	// Value is NaN is skipped and counted in Stats.Errors. Default (nil):
	// 0, which only AggCount can use.
	Value func(T) float64
	// Fns are the functions computed for each window, in the order of
	// WindowResult.Values; their names must differ. Default: AggCount().
	Fns []AggFn
	// EventTime returns an event's time in Unix nanoseconds: windows then
	// run on event time, closed by the watermark (see Aggregator).
	// Default (nil): processing time, the flow's clock.
	EventTime func(T) int64
	// OutOfOrder is how far behind the newest event time an event may be
	// and still count as on time: the watermark is the largest event time
	// seen minus OutOfOrder. Event time only. Default 0.
	OutOfOrder time.Duration
	// AllowedLateness is how long a window stays open after the watermark
	// passed its end: an event for it in that time updates it and the
	// window is emitted again (WindowResult.Update). Later events go to
	// the "late" output. Event time only. Default 0.
	AllowedLateness time.Duration
}

// EnsureDefaults fills every zero field that has a default.
func (o *AggregateOptions[T, K]) EnsureDefaults() {
	if len(o.Fns) == 0 {
		o.Fns = []AggFn{AggCount()}
	}
}

// Validate reports the first setting that cannot work, naming it.
func (o *AggregateOptions[T, K]) Validate() error { return o.validate("") }

// Most panes a sliding window may have: size / gcd(size, slide).
const maxPanesPerWindow = 10_000

// Names results cannot use for a function: the lead fields of a result.
var reservedAggNames = []string{"key", "start", "end", "update"}

func (o *AggregateOptions[T, K]) validate(name string) error {
	pre := "operators: aggregate: "
	if name != "" {
		pre = fmt.Sprintf("operators: aggregate %q: ", name)
	}
	bad := func(format string, args ...any) error { return errors.New(pre + fmt.Sprintf(format, args...)) }
	w := o.Window
	switch w.Kind {
	case CountWindow:
		if w.Count <= 0 {
			return bad("window count must be > 0 (Window.Count is %d)", w.Count)
		}
	case TumblingWindow, SlidingWindow:
		if w.Size <= 0 {
			return bad("window size must be > 0 (Window.Size is %s)", w.Size)
		}
		slide := w.slide()
		if slide <= 0 {
			return bad("window slide must be > 0 (Window.Slide is %s)", w.Slide)
		}
		if slide > w.Size {
			return bad("window slide %s must not exceed the window size %s", slide, w.Size)
		}
		if n := int64(w.Size) / winGCD(int64(w.Size), int64(slide)); n > maxPanesPerWindow {
			return bad("a %s window sliding by %s needs %d panes of %s (gcd of size and slide); at most %d: make the slide divide the size",
				w.Size, slide, n, time.Duration(winGCD(int64(w.Size), int64(slide))), maxPanesPerWindow)
		}
	case SessionWindow:
		if w.Gap <= 0 {
			return bad("session gap must be > 0 (Window.Gap is %s)", w.Gap)
		}
	default:
		return bad("window kind is not set: use operators.Tumbling, Sliding, Session or EveryN for Window")
	}
	if o.EventTime == nil && (o.OutOfOrder != 0 || o.AllowedLateness != 0) {
		return bad("OutOfOrder and AllowedLateness apply to event time only: set EventTime or leave them 0")
	}
	if w.Kind == CountWindow && (o.OutOfOrder != 0 || o.AllowedLateness != 0) {
		return bad("count windows have no watermark: leave OutOfOrder and AllowedLateness 0")
	}
	if o.OutOfOrder < 0 || o.AllowedLateness < 0 {
		return bad("OutOfOrder (%s) and AllowedLateness (%s) must be ≥ 0", o.OutOfOrder, o.AllowedLateness)
	}
	fns := o.Fns
	if len(fns) == 0 {
		fns = []AggFn{AggCount()}
	}
	seen := make(map[string]bool, len(fns))
	for i, fn := range fns {
		switch {
		case fn.kind == 0:
			return bad("Fns[%d] is not set: use operators.AggCount, AggAvg, …, or ParseAggFn", i)
		case fn.Name == "":
			return bad("Fns[%d] has no name", i)
		case seen[fn.Name]:
			return bad("two functions are called %q in Fns: results name values by function", fn.Name)
		case slices.Contains(reservedAggNames, fn.Name):
			return bad("function name %q is taken by a result field (%s)", fn.Name, strings.Join(reservedAggNames, ", "))
		case fn.kind == aggPercentile && !(fn.p > 0 && fn.p <= 100):
			return bad("percentile %v must be in (0, 100] (Fns[%d])", fn.p, i)
		case fn.kind == aggCustom && fn.newA == nil:
			return bad("custom function %q has no constructor", fn.Name)
		case fn.kind != aggCount && o.Value == nil:
			return bad("function %q needs Value, the number each event contributes", fn.Name)
		}
		seen[fn.Name] = true
	}
	return nil
}

// Aggregator computes aggregate functions over windows of events, per
// key, and emits one WindowResult per key and window when the window
// fires.
//
//	agg, err := operators.NewAggregator("lat", operators.AggregateOptions[Req, string]{
//		Window: operators.Sliding(time.Minute, 10*time.Second),
//		Key:    func(r Req) string { return r.Route },
//		Value:  func(r Req) float64 { return r.Millis },
//		Fns:    []operators.AggFn{operators.AggAvg(), operators.AggPercentile(99)},
//	})
//
// Windows run on processing time (the flow's clock: they fire on flow
// timers, so Flow.Advance drives them) or, with EventTime, on event time:
// the watermark is the largest event time seen minus OutOfOrder, and a
// window [Start, End) fires when the watermark reaches End. In event
// time nothing fires between events: an idle input holds its windows
// until more events come or the flow is drained.
//
// A window that fired stays open until the watermark passes End +
// AllowedLateness: a late event for it updates it, and the updated result
// is emitted again with Update set (once per window per batch of input,
// and before the watermark next moves). Events later than that, for every
// window they belong to, go to the "late" output (Late) and are counted
// in Stats.Late: none vanish. Only windows with events are emitted.
//
// Tumbling and sliding windows are aligned on the Unix epoch (their starts
// are multiples of the slide). A sliding window is made of panes of
// gcd(size, slide): an event updates the one pane of its key its time
// falls in, and a window is merged from its panes through two stacks, at
// an amortised cost of slide/gcd merges, whatever the number of panes;
// so neither an event nor a result costs more as the slide shrinks (only
// the number of results grows). Percentiles are the exception: a window
// with one gathers and sorts all its values. Each key's panes live in a
// ring that grows to the span of its live windows and is then reused:
// once warm, an aggregator with count, sum, avg, min and max allocates
// nothing per event (results share 4 KiB value arenas, one per 512
// values), and custom functions allocate only as rings grow.
//
// Session windows keep, per key, the sessions the watermark has not
// closed; an out-of-order event may join two. Count windows fire on their
// Count-th event and ignore time (but for their Start and End).
//
// Results of one input batch (or one timer) go out as one batch, in the
// order the windows fired (by end time, then by key, in the order keys
// were scheduled). Flush emits every open window as final and forgets it.
//
// An Aggregator is a Node with a main output (results) and a side output
// "late" (the late events): Connect("agg.late", …). Flow goroutine only.
type Aggregator[T any, K comparable] struct {
	single[T, WindowResult[K]]
	// Late is the "late" output: events that came after every window they
	// belong to was forgotten. Nothing reads it unless connected; its
	// events are counted in Stats.Late, not Out.
	Late Outlet[T]

	opts  AggregateOptions[T, K]
	fns   []AggFn
	names []string
	pct   bool // some function is a percentile: states keep their values
	ncust int  // number of custom functions

	kind                               WindowKind
	size, slide, pw, gap, lateness, oo int64 // ns; pw is the pane width
	panesPerWin                        int64
	count                              int64 // count windows

	wm     int64             // the watermark; math.MinInt64 before the first event
	keys   map[K]*aggKey[K]  // active and recently inactive keys
	states []*aggKey[K]      // by key id, for due entries; nil: id free
	gens   []uint32          // by key id: bumped when the id changes owner
	free   []*aggKey[K]      // recycled key states, their memory kept
	ids    []uint32          // free ids
	idle   int               // keys in the map that are not active
	due    aggCalendar       // per-key deadlines on W's time line
	pc     aggPaneCache      // tumbling and sliding: the last event's pane
	dirty  []*aggKey[K]      // keys with late updates to emit
	pool   []*aggState       // session states to reuse
	merged aggState          // scratch: a sliding window's panes merged
	view   aggState          // scratch: a tumbling window's pane
	arena  []float64         // results' Values are carved from it
	out    []WindowResult[K] // results of the current batch
	late   []T               // late events of the current batch
	nan    int               // NaN values in the current batch
	armed  int64             // processing time: when the flow timer is set; aggNone if not
	tgen   uint64            // processing time: the live flow timer's arg
	closed bool              // timers that fire after Close are ignored
}

// NewAggregator returns an aggregate node, or an error naming the option
// to fix.
func NewAggregator[T any, K comparable](name string, opts AggregateOptions[T, K]) (*Aggregator[T, K], error) {
	if err := opts.validate(name); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	o := &Aggregator[T, K]{opts: opts, kind: opts.Window.Kind, wm: aggNone, armed: aggNone, keys: make(map[K]*aggKey[K])}
	o.init(name, "aggregate", o)
	o.addPort("late", &o.Late)
	o.due.init(o.onDue)
	o.fns = slices.Clone(opts.Fns)
	o.names = make([]string, len(o.fns))
	for i := range o.fns {
		fn := &o.fns[i]
		o.names[i] = fn.Name
		switch fn.kind {
		case aggPercentile:
			o.pct = true
		case aggCustom:
			fn.slot = o.ncust
			o.ncust++
		}
	}
	o.merged.accs = o.newAccs()
	w := opts.Window
	o.lateness, o.oo = int64(opts.AllowedLateness), int64(opts.OutOfOrder)
	switch o.kind {
	case TumblingWindow, SlidingWindow:
		o.size, o.slide = int64(w.Size), int64(w.slide())
		o.pw = winGCD(o.size, o.slide)
		o.panesPerWin = o.size / o.pw
	case SessionWindow:
		o.gap = int64(w.Gap)
	case CountWindow:
		o.count = int64(w.Count)
	}
	return o, nil
}

// Aggregate adds an aggregator downstream of s. It returns the results
// and the late events (see Aggregator), or the options' error.
//
//	res, late, err := operators.Aggregate(src.Stream(), operators.AggregateOptions[Req, string]{
//		Window: operators.Tumbling(time.Minute),
//		Key:    func(r Req) string { return r.Route },
//		Value:  func(r Req) float64 { return r.Millis },
//		Fns:    []operators.AggFn{operators.AggAvg(), operators.AggMax()},
//	})
func Aggregate[T any, K comparable](s *Stream[T], opts AggregateOptions[T, K]) (results *Stream[WindowResult[K]], late *Stream[T], err error) {
	o, err := NewAggregator(autoName(s.f, "aggregate"), opts)
	if err != nil {
		return nil, nil, err
	}
	return attach(s, o, o, &o.Out), &Stream[T]{f: s.f, out: &o.Late}, nil
}

// Options returns the options the aggregator runs with (defaults filled).
func (o *Aggregator[T, K]) Options() AggregateOptions[T, K] { return o.opts }

// Names returns the functions' names, in the order of WindowResult.Values.
// The slice is shared: do not modify it.
func (o *Aggregator[T, K]) Names() []string { return o.names }

// Watermark returns the aggregator's watermark (Unix nanoseconds): event
// time windows ending at or before it have fired. math.MinInt64 before
// the first event.
func (o *Aggregator[T, K]) Watermark() int64 { return o.wm }

// Open keeps f and, in processing time, sets the flow timer for the
// earliest window to fire (a kept aggregator re-opened on a new flow
// after a reload carries on there).
func (o *Aggregator[T, K]) Open(f *Flow) error {
	o.flow = f
	o.closed = false
	o.armed = aggNone
	o.tgen++
	o.arm()
	return nil
}

// Push aggregates batch: for each event it moves the watermark, sends the
// event to the late output or adds it to its key's window state, and
// emits the windows that fired as one batch.
func (o *Aggregator[T, K]) Push(batch []T) {
	start := time.Now()
	o.stats.In(len(batch))
	var now int64 // processing time: every event of the batch is read now
	if o.opts.EventTime == nil {
		if o.flow == nil {
			panic(fmt.Sprintf("operators: aggregate %q: Push before Open: processing time needs the flow's clock", o.stats.Name))
		}
		now = o.flow.Now()
		if o.kind != CountWindow {
			o.advance(now)
			now = max(now, o.wm) // a clock set back makes nothing late
		}
	}
	for i := range batch {
		e := &batch[i]
		var v float64
		if o.opts.Value != nil {
			v = o.opts.Value(*e)
			if v != v { // NaN
				o.nan++
				continue
			}
		}
		ts := now
		if o.opts.EventTime != nil {
			ts = o.opts.EventTime(*e)
			if o.kind != CountWindow && ts-o.oo > o.wm {
				o.advance(ts - o.oo)
			}
		}
		var k K
		if o.opts.Key != nil {
			k = o.opts.Key(*e)
		}
		var late bool
		switch o.kind {
		case TumblingWindow, SlidingWindow:
			late = o.paneAdd(k, ts, v)
		case SessionWindow:
			late = o.sessionAdd(k, ts, v)
		case CountWindow:
			o.countAdd(k, ts, v)
		}
		if late {
			o.late = append(o.late, *e)
		}
	}
	o.flushDirty()
	o.arm()
	o.stats.Observe(start, len(batch))
	o.emit()
}

// Close stops the aggregator's timers; what it holds is dropped (Flush
// first to keep it).
func (o *Aggregator[T, K]) Close() error {
	o.closed = true
	return nil
}

// OnTimer is the processing-time flow timer: it moves the watermark to
// the flow's clock and emits what fired. Flow goroutine only.
func (o *Aggregator[T, K]) OnTimer(when int64, arg uint64) {
	if o.closed || arg != o.tgen {
		return // closed, or superseded by an earlier timer
	}
	o.armed = aggNone
	o.advance(max(when, o.flow.Now()))
	o.arm()
	o.emit()
}

// Flush emits every open window, as if the watermark had passed it, and
// forgets it (the flow drains this way). The watermark itself stays where
// it was: an event for a flushed window that comes after Flush starts the
// window anew.
func (o *Aggregator[T, K]) Flush() {
	o.flushDirty()
	if o.kind == CountWindow {
		for _, ks := range o.states {
			if ks != nil && ks.active {
				o.countFire(ks)
			}
		}
	} else {
		w := o.wm
		o.wm = math.MaxInt64
		o.due.Advance(math.MaxInt64)
		o.wm = w
	}
	o.emit()
}

// advance moves the watermark to w and fires what is due. Late updates
// are emitted first, while their windows are still open.
func (o *Aggregator[T, K]) advance(w int64) {
	if w <= o.wm {
		return
	}
	o.flushDirty()
	o.wm = w
	o.due.Advance(w)
}

// arm sets the processing-time flow timer for due's earliest entry.
func (o *Aggregator[T, K]) arm() {
	if o.opts.EventTime != nil || o.flow == nil {
		return
	}
	next, ok := o.due.Next()
	if !ok || (o.armed != aggNone && o.armed <= next) {
		return
	}
	o.tgen++
	o.armed = next
	o.flow.At(next, o, o.tgen)
}

// onDue runs ks's due entry: arg is its id and generation.
func (o *Aggregator[T, K]) onDue(when int64, arg uint64) {
	id, gen := uint32(arg>>32), uint32(arg)
	if int(id) >= len(o.states) {
		return
	}
	ks := o.states[id]
	if ks == nil || ks.gen != gen || ks.dueAt != when {
		return // stale
	}
	ks.dueAt = aggNone
	switch o.kind {
	case TumblingWindow, SlidingWindow:
		o.paneDue(ks)
	case SessionWindow:
		o.sessionDue(ks)
	}
}

// setDue makes when ks's due time, unless an entry at or before it is live
// (a later entry is not needed: the one that fires first re-arms).
func (o *Aggregator[T, K]) setDue(ks *aggKey[K], when int64) {
	if ks.dueAt != aggNone && ks.dueAt <= when {
		return
	}
	ks.dueAt = when
	o.due.At(when, uint64(ks.id)<<32|uint64(ks.gen))
}

// flushDirty emits the windows that late events updated.
func (o *Aggregator[T, K]) flushDirty() {
	for i, ks := range o.dirty {
		switch o.kind {
		case TumblingWindow, SlidingWindow:
			o.paneFlushDirty(ks)
		case SessionWindow:
			o.sessionFlushDirty(ks)
		}
		ks.dirty = false
		o.dirty[i] = nil
	}
	o.dirty = o.dirty[:0]
}

// emit hands the batch's results and late events downstream and counts
// what needs counting.
func (o *Aggregator[T, K]) emit() {
	if o.nan > 0 {
		o.stats.Errors(o.nan)
		o.nan = 0
	}
	if len(o.out) > 0 {
		o.Out.Emit(o.out)
		clear(o.out)
		o.out = o.out[:0]
	}
	if len(o.late) > 0 {
		o.stats.Late(len(o.late))
		o.Late.Emit(o.late)
		clear(o.late)
		o.late = o.late[:0]
	}
	o.sweepIdle()
}

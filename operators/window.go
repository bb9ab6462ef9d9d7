package operators

import (
	"fmt"
	"time"
)

// WindowKind is how events are grouped into windows.
type WindowKind uint8

// Window kinds.
const (
	// CountWindow: every Count events of a key.
	CountWindow WindowKind = iota + 1
	// TumblingWindow: consecutive windows of Size, aligned on the epoch.
	TumblingWindow
	// SlidingWindow: windows of Size starting every Slide.
	SlidingWindow
	// SessionWindow: a key's events until it is quiet for Gap.
	SessionWindow
)

// String returns the kind's name: "count", "tumbling", "sliding" or "session".
func (k WindowKind) String() string {
	switch k {
	case CountWindow:
		return "count"
	case TumblingWindow:
		return "tumbling"
	case SlidingWindow:
		return "sliding"
	case SessionWindow:
		return "session"
	}
	return fmt.Sprintf("WindowKind(%d)", uint8(k))
}

// WindowSpec says how an aggregator cuts events into windows. Build one
// with Tumbling, Sliding, Session or EveryN; only the fields of its Kind
// are used.
type WindowSpec struct {
	// Kind says which of the fields below are used.
	Kind WindowKind
	// Count is a count window's number of events.
	Count int
	// Size is a tumbling or sliding window's length.
	Size time.Duration
	// Slide is how far apart sliding windows start: at most Size. A slide
	// that does not divide Size works (panes are gcd(Size, Slide) long)
	// as long as a window has at most 10,000 panes. 0 means Size.
	Slide time.Duration
	// Gap is how long a session lasts after its last event.
	Gap time.Duration
}

func (w WindowSpec) slide() time.Duration {
	if w.Kind == TumblingWindow || w.Slide == 0 {
		return w.Size
	}
	return w.Slide
}

// String describes the window: "tumbling 1m0s", "sliding 1m0s every 10s",
// "session gap 30s", "count 100".
func (w WindowSpec) String() string {
	switch w.Kind {
	case CountWindow:
		return fmt.Sprintf("count %d", w.Count)
	case TumblingWindow:
		return fmt.Sprintf("tumbling %s", w.Size)
	case SlidingWindow:
		return fmt.Sprintf("sliding %s every %s", w.Size, w.slide())
	case SessionWindow:
		return fmt.Sprintf("session gap %s", w.Gap)
	}
	return w.Kind.String()
}

// Tumbling windows of size: [0, size), [size, 2·size), … in Unix time.
func Tumbling(size time.Duration) WindowSpec {
	return WindowSpec{Kind: TumblingWindow, Size: size, Slide: size}
}

// Sliding windows of size starting every slide: an event belongs to
// size/slide windows.
func Sliding(size, slide time.Duration) WindowSpec {
	return WindowSpec{Kind: SlidingWindow, Size: size, Slide: slide}
}

// Session windows: a key's session lasts while its events come less than
// gap apart, and ends gap after its last event.
func Session(gap time.Duration) WindowSpec { return WindowSpec{Kind: SessionWindow, Gap: gap} }

// EveryN makes count windows: each key's events n at a time.
func EveryN(n int) WindowSpec { return WindowSpec{Kind: CountWindow, Count: n} }

// WindowOptions configures a Windower: Count, Every or both.
type WindowOptions struct {
	// Count closes a window when it holds Count events. 0: no limit.
	Count int
	// Every closes a window at the end of each period of the flow's clock
	// (periods are aligned on the epoch: [0, Every), [Every, 2·Every), …).
	// Periods without events emit nothing. 0: no time limit.
	Every time.Duration
}

// Validate reports a setting that cannot work.
func (o WindowOptions) Validate() error { return o.validate("") }

func (o WindowOptions) validate(name string) error {
	pre := "operators: window: "
	if name != "" {
		pre = fmt.Sprintf("operators: window %q: ", name)
	}
	switch {
	case o.Count < 0 || o.Every < 0:
		return fmt.Errorf("%sCount (%d) and Every (%s) must be ≥ 0", pre, o.Count, o.Every)
	case o.Count == 0 && o.Every == 0:
		return fmt.Errorf("%sset Count (events per window), Every (a period) or both", pre)
	}
	return nil
}

// Windower groups events into windows and emits each window's events as
// one slice when it closes: after Count events, at the end of an Every
// period of the flow's clock, or at whichever comes first. It is the
// reactive `window`; to compute over windows, use an Aggregator.
//
//	w, err := operators.NewWindower[Tick]("ticks-1s", operators.WindowOptions{Every: time.Second, Count: 1000})
//
// Each window is a new slice, which downstream may keep. Windows are not
// keyed, and empty ones are not emitted. Flow goroutine only.
type Windower[T any] struct {
	single[T, []T]
	opts   WindowOptions
	every  int64
	cur    []T   // the open window's events (reused; copied out)
	end    int64 // end of the open window's period (Every)
	armed  int64 // the latest period end a flow timer is set for
	out    [][]T
	closed bool // timers that fire after Close are ignored
}

// NewWindower returns a window node, or an error naming the option to fix.
func NewWindower[T any](name string, opts WindowOptions) (*Windower[T], error) {
	if err := opts.validate(name); err != nil {
		return nil, err
	}
	o := &Windower[T]{opts: opts, every: int64(opts.Every), armed: aggNone}
	o.init(name, "window", o)
	return o, nil
}

// Window adds a windower downstream of s and returns its windows (see
// Windower), or the options' error.
//
//	perSecond, err := operators.Window(src.Stream(), operators.WindowOptions{Every: time.Second})
func Window[T any](s *Stream[T], opts WindowOptions) (*Stream[[]T], error) {
	o, err := NewWindower[T](autoName(s.f, "window"), opts)
	if err != nil {
		return nil, err
	}
	return attach(s, o, o, &o.Out), nil
}

// Open keeps f and sets the timer of the open window, if any.
func (o *Windower[T]) Open(f *Flow) error {
	o.flow = f
	o.closed = false
	o.armed = aggNone
	if len(o.cur) > 0 && o.every > 0 {
		o.armed = o.end
		f.At(o.end, o, 0)
	}
	return nil
}

// Push adds batch to the open window, closing windows as they fill, and
// emits the closed ones as one batch.
func (o *Windower[T]) Push(batch []T) {
	start := time.Now()
	o.stats.In(len(batch))
	var now int64
	if o.every > 0 {
		if o.flow == nil {
			panic(fmt.Sprintf("operators: window %q: Push before Open: Every needs the flow's clock", o.stats.Name))
		}
		now = o.flow.Now()
		if len(o.cur) > 0 && now >= o.end {
			o.close()
		}
	}
	for i := range batch {
		if len(o.cur) == 0 && o.every > 0 {
			o.end = winFloorDiv(now, o.every)*o.every + o.every
			if o.armed < o.end {
				o.armed = o.end
				o.flow.At(o.end, o, 0)
			}
		}
		o.cur = append(o.cur, batch[i])
		if o.opts.Count > 0 && len(o.cur) >= o.opts.Count {
			o.close()
		}
	}
	o.stats.Observe(start, len(batch))
	o.emit()
}

// Close stops the windower's timers; the open window is dropped (Flush
// first to keep it).
func (o *Windower[T]) Close() error {
	o.closed = true
	return nil
}

// OnTimer closes the open window when its period is over. Flow goroutine only.
func (o *Windower[T]) OnTimer(when int64, _ uint64) {
	if !o.closed && len(o.cur) > 0 && o.end <= when {
		o.close()
		o.emit()
	}
}

// Flush emits the open window.
func (o *Windower[T]) Flush() {
	if len(o.cur) > 0 {
		o.close()
		o.emit()
	}
}

// close copies the open window out and empties it.
func (o *Windower[T]) close() {
	w := make([]T, len(o.cur))
	copy(w, o.cur)
	o.out = append(o.out, w)
	clear(o.cur)
	o.cur = o.cur[:0]
}

func (o *Windower[T]) emit() {
	if len(o.out) > 0 {
		o.Out.Emit(o.out)
		clear(o.out)
		o.out = o.out[:0]
	}
}

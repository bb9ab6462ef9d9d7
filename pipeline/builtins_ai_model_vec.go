package pipeline

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"streamd/aimodel"
	"streamd/operators"
)

// vecNode is a similarity or dedup_semantic node: it compares each
// event's vector (normalised, so cosine is a dot product) with a window
// of recent vectors or a fixed reference set. Flow goroutine only.
type vecNode struct {
	stats *operators.Stats
	out   operators.Outlet[Event]
	errs  operators.Outlet[Event]
	flow  *operators.Flow
	rep   *reporter

	dedup     bool
	tag       bool // dedup_semantic, action: tag
	threshold float32
	field     []string
	idX       *Expr

	ref  []vecEntry // reference set (then no window)
	dims int        // the vectors' size, fixed by the reference or the first event

	// window: a ring of the last max vectors, oldest at tail
	win      []vecEntry
	tail, n  int
	duration time.Duration
	count    uint64 // events seen, the default ids

	vbuf   []float32
	outBuf []Event
	errBuf []Event
}

type vecEntry struct {
	v  []float32
	id []byte // JSON
	t  int64
}

func buildVecNode(c *BuildContext, dedup bool) (operators.Node, error) {
	s := c.Node.Similarity
	if s == nil {
		s = &SimilaritySpec{}
	}
	kind := "similarity"
	if dedup {
		kind = "dedup_semantic"
	}
	n := &vecNode{stats: operators.NewStats(c.Node.Name, kind), dedup: dedup}
	n.rep = c.reporter(func() *operators.Stats { return n.stats })
	var err error
	if n.field, err = fieldName(c, "similarity", s.Field, "embedding"); err != nil {
		return nil, err
	}
	if s.ID != "" {
		if n.idX, err = c.Expr("similarity", s.ID, false); err != nil {
			return nil, err
		}
	}
	if s.Window < 0 || s.Duration < 0 || s.Dimensions < 0 {
		return nil, c.Errorf("similarity", "window, duration and dimensions must not be negative")
	}
	if dedup {
		n.threshold = 0.95
		if s.Threshold != nil {
			n.threshold = float32(*s.Threshold)
		}
		switch s.Action {
		case "", "drop":
		case "tag":
			n.tag = true
		default:
			return nil, c.Errorf("similarity", "action %q: want drop or tag", s.Action)
		}
	} else if s.Threshold != nil || s.Action != "" {
		return nil, c.Errorf("similarity", "threshold and action are dedup_semantic's")
	}
	if n.threshold < -1 || n.threshold > 1 {
		return nil, c.Errorf("similarity", "threshold %v: want a cosine similarity in [-1, 1]", n.threshold)
	}
	refs := s.Reference
	if s.ReferenceFile != "" {
		more, err := loadReference(s.ReferenceFile)
		if err != nil {
			return nil, c.Errorf("similarity", "reference_file: %v", err)
		}
		refs = append(append([]ReferenceSpec(nil), refs...), more...)
	}
	if len(refs) > 0 {
		if s.Window != 0 || s.Duration != 0 {
			return nil, c.Errorf("similarity", "give a reference set or a window (window, duration), not both")
		}
		dims := s.Dimensions
		if dims == 0 {
			dims = 256
		}
		h := aimodel.HashingEmbedder{Dimensions: dims}
		for i, r := range refs {
			var v []float32
			switch {
			case len(r.Vector) > 0 && r.Text != "":
				return nil, c.Errorf("similarity", "reference[%d]: give vector or text, not both", i)
			case len(r.Vector) > 0:
				v = aimodel.Normalize(append([]float32(nil), r.Vector...))
			case r.Text != "":
				v = h.Embed(r.Text)
			default:
				return nil, c.Errorf("similarity", "reference[%d]: needs vector or text", i)
			}
			if n.dims != 0 && len(v) != n.dims {
				return nil, c.Errorf("similarity", "reference[%d]: %d dimensions, the others have %d", i, len(v), n.dims)
			}
			n.dims = len(v)
			id := r.ID
			if id == nil {
				id = i
			}
			idb, err := json.Marshal(id)
			if err != nil {
				return nil, c.Errorf("similarity", "reference[%d]: id: %v", i, err)
			}
			n.ref = append(n.ref, vecEntry{v: v, id: idb})
		}
		return n, nil
	}
	size := s.Window
	if size == 0 {
		size = 1000
	}
	n.win = make([]vecEntry, size)
	n.duration = s.Duration
	return n, nil
}

func (n *vecNode) Open(f *operators.Flow) error { n.flow = f; return nil }
func (n *vecNode) Close() error                 { return nil }
func (n *vecNode) Stats() *operators.Stats      { return n.stats }

func (n *vecNode) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return operators.Inlet[Event](n), reflect.TypeFor[Event](), true
}

func (n *vecNode) Output(name string) (operators.Port, bool) {
	switch name {
	case "":
		return &n.out, true
	case operators.ErrorPort:
		return &n.errs, true
	}
	return nil, false
}

func (n *vecNode) Outputs() []string { return []string{"", operators.ErrorPort} }

// Push compares each event, then emits the batch's results.
func (n *vecNode) Push(batch []Event) {
	start := time.Now()
	n.stats.In(len(batch))
	now := n.flow.Now()
	for i := range batch {
		n.one(&batch[i], now)
	}
	n.stats.Observe(start, len(batch))
	if len(n.outBuf) > 0 {
		n.stats.Out(len(n.outBuf))
		n.out.Emit(n.outBuf)
		clear(n.outBuf)
		n.outBuf = n.outBuf[:0]
	}
	if len(n.errBuf) > 0 {
		n.stats.Errors(len(n.errBuf))
		n.errs.Emit(n.errBuf)
		clear(n.errBuf)
		n.errBuf = n.errBuf[:0]
	}
}

func (n *vecNode) fail(ev *Event, e *aimodel.Error) {
	n.errBuf = append(n.errBuf, aiErrorEvent(*ev, n.stats.Name, e))
}

func (n *vecNode) one(ev *Event, now int64) {
	n.count++
	raw, ok := jsonPath(ev.Data, n.field)
	if !ok {
		n.fail(ev, badInput("no vector at %s", joinPath(n.field)))
		return
	}
	v, err := aimodel.ParseVector(n.vbuf[:0], raw)
	n.vbuf = v
	if err != nil || len(v) == 0 {
		n.fail(ev, badInput("%s: not a vector of numbers", joinPath(n.field)))
		return
	}
	if n.dims != 0 && len(v) != n.dims {
		n.fail(ev, badInput("%s: %d dimensions, want %d", joinPath(n.field), len(v), n.dims))
		return
	}
	aimodel.Normalize(v)
	var id []byte
	if n.ref == nil {
		if n.idX != nil {
			b, _, err := n.idX.JSON(ev)
			if err != nil {
				n.fail(ev, badInput("id: %v", err))
				return
			}
			id = b
		} else {
			id = strconv.AppendUint(nil, n.count, 10)
		}
		n.expire(now)
	}
	best, nearest := n.nearest(v)
	dup := n.dedup && nearest != nil && best >= n.threshold
	switch {
	case n.dedup && !n.tag && dup:
		n.stats.Dropped(1)
	case n.dedup && !n.tag:
		n.outBuf = append(n.outBuf, *ev) // passes unchanged
	case n.dedup:
		n.outBuf = append(n.outBuf, ev.WithData(setFields(ev.Data, []string{"duplicate", "similarity", "nearest"},
			[][]byte{strconv.AppendBool(nil, dup), appendScore(nil, best, nearest), jsonOrNull(nearest)}), nil))
	default:
		n.outBuf = append(n.outBuf, ev.WithData(setFields(ev.Data, []string{"similarity", "nearest"},
			[][]byte{appendScore(nil, best, nearest), jsonOrNull(nearest)}), nil))
	}
	if n.ref == nil && !dup {
		n.remember(v, id, now)
	}
}

// nearest returns the best similarity and its entry's id (nil when there
// is nothing to compare with).
func (n *vecNode) nearest(v []float32) (float32, []byte) {
	best := float32(math.Inf(-1))
	var id []byte
	if n.ref != nil {
		for i := range n.ref {
			if s := aimodel.Dot(v, n.ref[i].v); s > best {
				best, id = s, n.ref[i].id
			}
		}
		return best, id
	}
	size := len(n.win)
	for k := 0; k < n.n; k++ {
		e := &n.win[(n.tail+k)%size]
		if len(e.v) != len(v) {
			continue
		}
		if s := aimodel.Dot(v, e.v); s > best {
			best, id = s, e.id
		}
	}
	return best, id
}

// expire drops the window's vectors older than duration.
func (n *vecNode) expire(now int64) {
	if n.duration <= 0 {
		return
	}
	size := len(n.win)
	for n.n > 0 && now-n.win[n.tail].t > int64(n.duration) {
		n.win[n.tail].id = nil
		n.tail = (n.tail + 1) % size
		n.n--
	}
}

// remember adds v to the window, evicting the oldest when it is full (its
// slice is reused).
func (n *vecNode) remember(v []float32, id []byte, now int64) {
	size := len(n.win)
	var slot *vecEntry
	if n.n == size {
		slot = &n.win[n.tail]
		n.tail = (n.tail + 1) % size
	} else {
		slot = &n.win[(n.tail+n.n)%size]
		n.n++
	}
	slot.v = append(slot.v[:0], v...)
	slot.id, slot.t = id, now
}

// appendScore appends a similarity rounded to 4 decimals (0 when there
// was nothing to compare with).
func appendScore(dst []byte, s float32, id []byte) []byte {
	if id == nil {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, round4(float64(s)), 'g', -1, 64)
}

func jsonOrNull(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}

func joinPath(p []string) string { return strings.Join(p, ".") }

package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"streamd/ai"
	"streamd/operators"
	"streamd/protocol"
	"streamd/state"
)

// enrich, cache, and where classify keeps its model.

// ---- enrich ----

func buildEnrich(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	tsF, err := dataField(c, "timestamp", ns.Timestamp, "")
	if err != nil {
		return nil, err
	}
	var keys []string
	if tsF != "" {
		keys = append(keys, tsF)
	}
	if ns.Model != "" {
		keys = append(keys, "model")
	}
	var (
		tk *ai.Tokenizer
		x  *Expr
	)
	if ns.CountField != "" {
		cf, err := dataField(c, "count_field", ns.CountField, "")
		if err != nil {
			return nil, err
		}
		if x, err = textExpr(c); err != nil {
			return nil, err
		}
		if tk, err = tokenizerOf(c); err != nil {
			return nil, err
		}
		keys = append(keys, cf)
	} else if ns.Text != "" || ns.Encoding != "" {
		k := "text"
		if ns.Text == "" {
			k = "encoding"
		}
		return nil, c.Errorf(k, "%s applies only with count_field (the field the token count goes to)", k)
	}
	nFixed := len(keys)
	var sets []*Expr
	for _, it := range ns.Set {
		k, ok := it.Key.(string)
		if !ok || !operators.ValidName(k) {
			return nil, c.Errorf("set", "field name %v: use letters, digits, '_' and '-'", it.Key)
		}
		src, ok := it.Value.(string)
		if !ok {
			src = fmt.Sprint(it.Value) // a YAML number or bool is a constant expression
		}
		sx, err := c.Expr("set", src, false)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		sets = append(sets, sx)
	}
	if len(keys) == 0 {
		return nil, c.Errorf("", "op enrich needs timestamp, model, count_field or set")
	}
	for i, k := range keys {
		if slices.Index(keys, k) != i {
			return nil, c.Errorf("set", "field %q is set twice", k)
		}
	}
	n := newTextOp(c, "enrich")
	raws := make([][]byte, len(keys))
	vals := make([]any, len(keys))
	var tsBuf, cntBuf []byte
	modelJSON := appendJSONString(nil, ns.Model)
	n.proc = func(ev *Event) error {
		k := 0
		if tsF != "" {
			ms := n.flow.Now() / int64(time.Millisecond)
			tsBuf = strconv.AppendInt(tsBuf[:0], ms, 10)
			raws[k], vals[k] = tsBuf, float64(ms)
			k++
		}
		if ns.Model != "" {
			raws[k], vals[k] = modelJSON, ns.Model
			k++
		}
		if x != nil {
			text, err := evalText(x, ev)
			if err != nil {
				return err
			}
			cnt := tk.Count(text)
			cntBuf = strconv.AppendInt(cntBuf[:0], int64(cnt), 10)
			raws[k], vals[k] = cntBuf, float64(cnt)
		}
		for i, sx := range sets {
			b, v, err := sx.JSON(ev)
			if err != nil {
				return fmt.Errorf("set %s: %w", keys[nFixed+i], err)
			}
			raws[nFixed+i], vals[nFixed+i] = b, v
		}
		n.emit(0, withFields(ev, keys, raws, vals))
		return nil
	}
	return n, nil
}

// ---- cache ----

// cacheable says which ops a cache may wrap: the ones that give their
// outputs for an event synchronously, during its Push, and whose outputs
// depend on the event alone (a learning classifier does not). The
// function returns why a node spec cannot be cached, or "".
var cacheable = map[string]func(ns *NodeSpec) string{
	"map": func(ns *NodeSpec) string {
		if ns.Concurrency.Set() || ns.Retry != nil {
			return "a map with concurrency or retry emits later"
		}
		return ""
	},
	"filter":    func(*NodeSpec) string { return "" },
	"flat_map":  func(*NodeSpec) string { return "" },
	"tokenize":  func(*NodeSpec) string { return "" },
	"chunk":     func(*NodeSpec) string { return "" },
	"sentiment": func(*NodeSpec) string { return "" },
	"enrich": func(ns *NodeSpec) string {
		if ns.Timestamp != "" {
			return "an enrich with timestamp gives each event its own time"
		}
		return ""
	},
	"classify": func(ns *NodeSpec) string {
		if ns.Model != "" {
			return "a classify with a model keeps learning"
		}
		return ""
	},
}

func cacheableOps() string {
	names := make([]string, 0, len(cacheable))
	for k := range cacheable {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// cacheOut is one event a cached node emitted for a key, and its port:
// either the fields it set on the event's data (delta) or, when it made
// new data, that event whole.
type cacheOut struct {
	port  int
	ev    Event
	delta *fieldDelta
}

// fieldDelta is what a node that sets fields (tokenize, classify,
// sentiment, enrich, map with set) did to an event's data.
type fieldDelta struct {
	keys []string
	raws [][]byte
	vals []any // decoded, when the output had its decoded form
}

// deltaOf returns the fields out sets on in, when out is in with fields
// set (the members of in kept, in order, values replaced or not, new
// members after): what setFields makes.
func deltaOf(in, out *Event) (*fieldDelta, bool) {
	type member struct {
		k    string
		v    []byte
		kept bool
	}
	var ins []member
	if protocol.ForEachMember(in.Data, func(k []byte, s, e int) bool {
		ins = append(ins, member{k: string(k), v: in.Data[s:e]})
		return true
	}) != nil {
		return nil, false
	}
	d := &fieldDelta{}
	ok, j := true, 0
	if protocol.ForEachMember(out.Data, func(k []byte, s, e int) bool {
		key, v := string(k), out.Data[s:e]
		if strings.IndexByte(key, '\\') >= 0 {
			ok = false // an escaped key: setFields would escape it again
			return false
		}
		for j < len(ins) && ins[j].k != key { // skipped: removed, not a delta
			if !ins[j].kept {
				ok = false
				return false
			}
			j++
		}
		if j < len(ins) {
			ins[j].kept = true
			if bytes.Equal(ins[j].v, v) {
				j++
				return true
			}
			j++
		}
		d.keys = append(d.keys, key)
		d.raws = append(d.raws, bytes.Clone(v))
		return true
	}) != nil || !ok {
		return nil, false
	}
	for _, m := range ins {
		if !m.kept {
			return nil, false
		}
	}
	if out.val != nil && out.val.done {
		if m, isMap := out.val.v.(map[string]any); isMap {
			d.vals = make([]any, len(d.keys))
			for i, k := range d.keys {
				d.vals[i] = m[k]
			}
		}
	}
	return d, true
}

// cacheNode memoizes an inner node: on a miss it pushes the event to the
// inner node and records what comes out of each of its ports; on a hit it
// emits the recorded outputs again without running the inner node: the
// recorded fields set on the new event's data, or a recorded new data
// (with the new event's stream, time, sender and id). Failures are not
// cached.
type cacheNode struct {
	stats        *operators.Stats
	inner        operators.Node
	inlet        operators.Inlet[Event]
	ports        []string // the inner node's, and error
	errPort      int
	outs         []operators.Outlet[Event]
	bufs         [][]Event
	key          *Expr
	lru          *ai.LRU[string, []cacheOut]
	hits, misses *atomic.Uint64
	capturing    bool
	cur          []cacheOut
	one          [1]Event
	flow         *operators.Flow
	rep          *reporter
}

func buildCache(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	key, err := c.Expr("key", ns.Key, false)
	if err != nil {
		return nil, err
	}
	if ns.Duration < 0 {
		return nil, c.Errorf("duration", "a negative duration (the entries' time to live)")
	}
	if ns.Max < 0 {
		return nil, c.Errorf("max", "max (the entries kept) must be > 0")
	}
	do := ns.Do
	if do == nil {
		return nil, c.Errorf("", "op cache needs do: {op: OP, …}, the node whose results it keeps")
	}
	path := c.path + ".do"
	why, ok := cacheable[do.Op]
	if !ok {
		return nil, specError(do.node, "op", path, "op %q cannot be cached (ops a cache can wrap: %s)", do.Op, cacheableOps())
	}
	if w := why(do); w != "" {
		return nil, specError(do.node, "op", path, "this %s cannot be cached: %s", do.Op, w)
	}
	def, ok := c.Opts.Registry.ops[do.Op]
	if !ok {
		return nil, specError(do.node, "op", path, "unknown op %q", do.Op)
	}
	if err := checkFields(do, &def, path); err != nil {
		return nil, err
	}
	inner := *do
	if inner.Name == "" {
		inner.Name = ns.Name + "-do"
	} else if !operators.ValidName(inner.Name) {
		return nil, specError(do.node, "name", path, "bad node name: use letters, digits, '_' and '-'")
	}
	sub := &BuildContext{Spec: c.Spec, Node: &inner, Opts: c.Opts, path: path}
	in, err := def.Build(sub)
	for _, r := range sub.res {
		c.Keep(r)
	}
	if err != nil {
		return nil, err
	}
	inlet, typ, ok := in.Input("")
	if !ok || typ != reflect.TypeFor[Event]() {
		return nil, specError(do.node, "op", path, "op %s has no event input", do.Op)
	}
	size := ns.Max
	if size == 0 {
		size = 10000
	}
	n := &cacheNode{stats: operators.NewStats(ns.Name, "cache"), inner: in, inlet: inlet.(operators.Inlet[Event]), key: key,
		lru: ai.NewLRU[string, []cacheOut](size, int64(ns.Duration))}
	n.hits, n.misses = n.stats.Counter("cache_hits"), n.stats.Counter("cache_misses")
	n.rep = c.reporter(func() *operators.Stats { return n.stats })
	n.ports = slices.Clone(in.Outputs())
	if n.errPort = slices.Index(n.ports, operators.ErrorPort); n.errPort < 0 {
		n.ports = append(n.ports, operators.ErrorPort)
		n.errPort = len(n.ports) - 1
	}
	n.outs = make([]operators.Outlet[Event], len(n.ports))
	n.bufs = make([][]Event, len(n.ports))
	for i, name := range in.Outputs() {
		p, _ := in.Output(name)
		if err := p.ConnectAny(operators.InletFunc[Event](func(b []Event) { n.captured(i, b) })); err != nil {
			return nil, specError(do.node, "op", path, "op %s: port %q: %v", do.Op, name, err)
		}
	}
	return n, nil
}

// captured receives what the inner node emits on port p: during a miss
// it is recorded; at other times (a flush) it passes straight on.
func (n *cacheNode) captured(p int, b []Event) {
	if n.capturing {
		for i := range b {
			n.cur = append(n.cur, cacheOut{port: p, ev: b[i]})
		}
		return
	}
	n.count(p, len(b))
	n.outs[p].Emit(b)
}

func (n *cacheNode) count(p, k int) {
	if p == n.errPort {
		n.stats.Errors(k)
	} else {
		n.stats.Out(k)
	}
}

// again is a recorded output as the output of in.
func again(o *cacheOut, in *Event) Event {
	if d := o.delta; d != nil {
		if len(d.keys) == 0 { // the node passed the event on as it was
			return *in
		}
		return withFields(in, d.keys, d.raws, d.vals)
	}
	t := o.ev
	t.Stream, t.Time, t.Key, t.ID, t.Origin = in.Stream, in.Time, in.Key, in.ID, in.Origin
	if t.val == nil || !t.val.done { // not decoded: each event decodes its own
		t.val = new(decoded)
	}
	return t
}

// Push answers each event from the cache, or from the inner node.
func (n *cacheNode) Push(batch []Event) {
	start := time.Now()
	n.stats.In(len(batch))
	now := n.flow.Now()
	for i := range batch {
		ev := &batch[i]
		k, err := n.key.String(ev)
		if err != nil {
			n.fail(ev, fmt.Errorf("key: %w", err))
			continue
		}
		if outs, ok := n.lru.Get(k, now); ok {
			n.hits.Add(1)
			for j := range outs {
				n.bufs[outs[j].port] = append(n.bufs[outs[j].port], again(&outs[j], ev))
			}
			continue
		}
		n.misses.Add(1)
		n.cur, n.capturing = n.cur[:0], true
		n.one[0] = *ev
		n.inlet.Push(n.one[:])
		n.one[0], n.capturing = Event{}, false
		failed := false
		for _, o := range n.cur {
			failed = failed || o.port == n.errPort
			n.bufs[o.port] = append(n.bufs[o.port], o.ev)
		}
		if !failed {
			saved := slices.Clone(n.cur)
			for j := range saved {
				o := &saved[j]
				if d, ok := deltaOf(ev, &o.ev); ok {
					o.ev, o.delta = Event{}, d
				} else if v := o.ev.val; v == nil || !v.done {
					o.ev.val = nil // shared with the event just emitted: not ours to decode
				}
			}
			n.lru.Put(k, saved, now)
		}
		clear(n.cur)
	}
	n.stats.Observe(start, len(batch))
	for p := range n.outs {
		b := n.bufs[p]
		if len(b) == 0 {
			continue
		}
		n.count(p, len(b))
		if p == n.errPort && !n.outs[p].Connected() {
			n.rep.note(fmt.Errorf("%d event(s) failed", len(b)), "cache (nothing reads its error port: the events are dropped)")
		}
		n.outs[p].Emit(b)
		clear(b)
		n.bufs[p] = b[:0]
	}
}

func (n *cacheNode) fail(ev *Event, err error) {
	if !n.outs[n.errPort].Connected() {
		n.stats.Errors(1)
		n.rep.note(err, "cache (nothing reads its error port: the event is dropped)")
		return
	}
	n.bufs[n.errPort] = append(n.bufs[n.errPort], errorEvent(operators.Failed[Event]{Event: *ev, Err: err, Attempts: 1, Node: n.stats.Name}))
}

func (n *cacheNode) Open(f *operators.Flow) error { n.flow = f; return n.inner.Open(f) }
func (n *cacheNode) Close() error                 { return n.inner.Close() }
func (n *cacheNode) Stats() *operators.Stats      { return n.stats }
func (n *cacheNode) Outputs() []string            { return n.ports }

// Flush flushes the inner node, if it holds events.
func (n *cacheNode) Flush() {
	if f, ok := n.inner.(operators.Flusher); ok {
		f.Flush()
	}
}

func (n *cacheNode) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return operators.Inlet[Event](n), reflect.TypeFor[Event](), true
}

func (n *cacheNode) Output(name string) (operators.Port, bool) {
	if i := slices.Index(n.ports, name); i >= 0 {
		return &n.outs[i], true
	}
	return nil, false
}

// ---- classify's model in the state store ----

// ClassifyNamespace is the state-store namespace where classify node
// `node` of pipeline `pipeline` keeps its naive Bayes model: key
// "d"+LABEL holds the label's texts and words trained (two uvarints),
// "w"+LABEL+"\x00"+WORD the word's count under the label (a uvarint).
func ClassifyNamespace(pipeline, node string) string { return "classify:" + pipeline + "/" + node }

// modelStore writes a model's changes through a Batcher (group commit)
// and reads the model back when the node opens.
type modelStore struct {
	st     *state.Store
	b      *state.Batcher
	ns     string
	rep    *reporter
	k, kb  []byte
	vb     []byte
	loaded bool
}

func (m *modelStore) onWrite(err error) {
	if err != nil {
		m.rep.note(err, "classify model write (what it learnt may not survive a restart)")
	}
}

func (m *modelStore) put(key []byte, val []byte) {
	m.kb = state.AppendKey(m.kb[:0], m.ns, key)
	if err := m.b.Put(m.kb, val, 0, m.onWrite); err != nil {
		m.onWrite(err)
	}
}

// save queues label's totals and the counts of the words ids.
func (m *modelStore) save(model *ai.NaiveBayes, label string, ids []int32) {
	docs, tokens := model.LabelStats(label)
	m.k = append(append(m.k[:0], 'd'), label...)
	m.vb = binary.AppendUvarint(binary.AppendUvarint(m.vb[:0], docs), tokens)
	m.put(m.k, m.vb)
	for _, id := range ids {
		m.k = append(append(append(append(m.k[:0], 'w'), label...), 0), model.Word(id)...)
		m.vb = binary.AppendUvarint(m.vb[:0], uint64(model.Count(label, id)))
		m.put(m.k, m.vb)
	}
}

// load reads the model back (the first Open only).
func (m *modelStore) load(model *ai.NaiveBayes) error {
	if m.loaded {
		return nil
	}
	m.loaded = true
	var bad error
	err := m.st.Scan(state.Key(m.ns, ""), func(k, v []byte) bool {
		_, key, ok := state.SplitKey(k)
		if !ok || len(key) < 2 {
			return true
		}
		switch key[0] {
		case 'd':
			docs, n := binary.Uvarint(v)
			tokens, n2 := binary.Uvarint(v[max(n, 0):])
			if n <= 0 || n2 <= 0 {
				return true
			}
			bad = model.RestoreLabel(string(key[1:]), docs, tokens)
		case 'w':
			label, word, ok := bytes.Cut(key[1:], []byte{0})
			cnt, n := binary.Uvarint(v)
			if !ok || n <= 0 {
				return true
			}
			bad = model.RestoreWord(string(label), string(word), uint32(cnt))
		}
		return bad == nil
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("classify: restoring the model from the store: %w", err)
	}
	return nil
}

package pipeline

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"time"

	"streamd/ai"
	"streamd/operators"
)

// AI text ops (docs/ai.md, "Text operators"): tokenize, chunk, classify,
// sentiment, enrich and cache. They run on the flow goroutine, offline;
// the logic is in package ai.

func init() { extraBuiltins = append(extraBuiltins, registerAIText) }

func registerAIText(r *Registry) {
	r.Register("tokenize", OpDef{
		Doc: "counts the tokens of `text` (default data.text) in an OpenAI encoding (`encoding`: cl100k_base, default, or o200k_base) into `count_field` " +
			"(default token_count) and the ids into `ids_field`; `max_tokens` keeps the first N tokens of the text (into `text_field`) and sets truncated",
		Fields: []string{"text", "encoding", "count_field", "ids_field", "max_tokens", "text_field"},
		Build:  buildTokenize,
	})
	r.Register("chunk", OpDef{
		Doc: "splits `text` into chunks of `size` runes (`by: tokens`: tokens) sharing `overlap` with their neighbour, and emits one event per chunk: " +
			"{id, chunk_index, chunk_count, start, end, text} (start and end: byte offsets into the text)",
		Fields: []string{"text", "by", "size", "overlap", "encoding", "id"},
		Build:  buildChunk,
	})
	r.Register("classify", OpDef{
		Doc: "sets `label` and `confidence` from the first matching rule (keywords, regex, if) or an online naive Bayes model (`model: naive_bayes`) " +
			"that learns from events with a `train` label (default data.label) and keeps what it learnt in the state store; " +
			"below `confidence_threshold` events leave on the `low` port",
		Fields: []string{"text", "rules", "model", "train", "confidence_threshold", "max"},
		Build:  buildClassify,
	})
	r.Register("sentiment", OpDef{
		Doc:    "sets `sentiment` to the VADER scores of `text`: {compound, pos, neg, neu}",
		Fields: []string{"text"},
		Build:  buildSentiment,
	})
	r.Register("enrich", OpDef{
		Doc: "adds metadata fields: `timestamp` (the processing time, Unix ms), `model` (a model name), `count_field` (the token count of `text`), " +
			"and `set: {field: expression}`",
		Fields: []string{"timestamp", "model", "count_field", "text", "encoding", "set"},
		Build:  buildEnrich,
	})
	r.Register("cache", OpDef{
		Doc: "memoizes the node in `do` by the `key` expression: a hit emits what that node emitted for the key before, without running it; " +
			"entries live `duration` (0: until evicted), at most `max` (default 10000, least recently used evicted); counters cache_hits, cache_misses",
		Fields: []string{"key", "duration", "max", "do"},
		Build:  buildCache,
	})
}

// ClassRuleSpec is one rule of a classify node (docs/ai.md): it matches
// when every condition it gives holds.
type ClassRuleSpec struct {
	Label      string   `yaml:"label"`
	Keywords   []string `yaml:"keywords"` // any of these words or phrases, case-insensitive
	Regex      string   `yaml:"regex"`    // Go (RE2) syntax, on the text
	If         string   `yaml:"if"`       // an expression on the event
	Confidence *float64 `yaml:"confidence"`
}

// ---- the node they share ----

// textOp processes each event on the flow goroutine (proc) and emits what
// it makes on its ports: the main one, the op's own (a classifier's low
// and trained), and error, where failures leave as error records like a
// map's ({error, node, attempts, data}).
type textOp struct {
	stats  *operators.Stats
	ports  []string // "" first, error last
	outs   []operators.Outlet[Event]
	bufs   [][]Event
	proc   func(ev *Event) error
	after  func() // after each batch (a model's writes: flush them)
	rep    *reporter
	flow   *operators.Flow
	onOpen func(f *operators.Flow) error
}

func newTextOp(c *BuildContext, kind string, extra ...string) *textOp {
	ports := append(append([]string{""}, extra...), operators.ErrorPort)
	n := &textOp{stats: operators.NewStats(c.Node.Name, kind), ports: ports,
		outs: make([]operators.Outlet[Event], len(ports)), bufs: make([][]Event, len(ports))}
	n.rep = c.reporter(func() *operators.Stats { return n.stats })
	return n
}

func (n *textOp) emit(port int, ev Event) { n.bufs[port] = append(n.bufs[port], ev) }

// Push processes the batch, then emits each port's events as one batch.
func (n *textOp) Push(batch []Event) {
	start := time.Now()
	n.stats.In(len(batch))
	for i := range batch {
		if err := n.proc(&batch[i]); err != nil {
			n.fail(&batch[i], err)
		}
	}
	if n.after != nil {
		n.after()
	}
	n.stats.Observe(start, len(batch))
	for p := range n.outs {
		b := n.bufs[p]
		if len(b) == 0 {
			continue
		}
		if p < len(n.outs)-1 {
			n.stats.Out(len(b))
		}
		n.outs[p].Emit(b)
		clear(b)
		n.bufs[p] = b[:0]
	}
}

func (n *textOp) fail(ev *Event, err error) {
	n.stats.Errors(1)
	e := len(n.outs) - 1
	if !n.outs[e].Connected() {
		n.rep.note(err, n.stats.Kind+" (nothing reads its error port: the event is dropped)")
		return
	}
	n.emit(e, errorEvent(operators.Failed[Event]{Event: *ev, Err: err, Attempts: 1, Node: n.stats.Name}))
}

func (n *textOp) Open(f *operators.Flow) error {
	n.flow = f
	if n.onOpen != nil {
		return n.onOpen(f)
	}
	return nil
}

func (n *textOp) Close() error            { return nil }
func (n *textOp) Stats() *operators.Stats { return n.stats }
func (n *textOp) Outputs() []string       { return n.ports }

func (n *textOp) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return operators.Inlet[Event](n), reflect.TypeFor[Event](), true
}

func (n *textOp) Output(name string) (operators.Port, bool) {
	for i, p := range n.ports {
		if p == name {
			return &n.outs[i], true
		}
	}
	return nil, false
}

// ---- helpers ----

// textExpr compiles a text op's `text` (default data.text).
func textExpr(c *BuildContext) (*Expr, error) {
	src := c.Node.Text
	if src == "" {
		src = "data.text"
	}
	return c.Expr("text", src, false)
}

// evalText evaluates x to a string.
func evalText(x *Expr, ev *Event) (string, error) {
	v, err := x.run(ev)
	if err != nil {
		return "", err
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", fmt.Errorf("text: %s is missing", x.Src)
	}
	return "", fmt.Errorf("text: %s is a %T, not a string", x.Src, v)
}

// dataField checks the data field name in key (def when unset).
func dataField(c *BuildContext, key, v, def string) (string, error) {
	if v == "" {
		return def, nil
	}
	if !operators.ValidName(v) {
		return "", c.Errorf(key, "field name %q: use letters, digits, '_' and '-'", v)
	}
	return v, nil
}

// tokenizerOf returns the node's encoding, loaded (not when checking).
func tokenizerOf(c *BuildContext) (*ai.Tokenizer, error) {
	enc := c.Node.Encoding
	if enc == "" {
		enc = ai.CL100K
	}
	if err := ai.CheckEncoding(enc); err != nil {
		return nil, c.Errorf("encoding", "%v", err)
	}
	if c.Opts.checkOnly {
		return nil, nil
	}
	tk, err := ai.GetTokenizer(enc)
	if err != nil {
		return nil, c.Errorf("encoding", "%v", err)
	}
	return tk, nil
}

// withFields returns ev with its data's fields keys set to the JSON values
// raws (the others kept byte for byte, see setFields). vals, when given,
// are the same values decoded: the new event's decoded form is then ready
// without parsing the new data again.
func withFields(ev *Event, keys []string, raws [][]byte, vals []any) Event {
	data := setFields(ev.Data, keys, raws)
	if vals == nil {
		return ev.WithData(data, nil)
	}
	v, _ := ev.Value()
	old, _ := v.(map[string]any)
	nm := maps.Clone(old)
	if nm == nil {
		nm = make(map[string]any, len(keys))
	}
	for i, k := range keys {
		nm[k] = vals[i]
	}
	return ev.WithData(data, nm)
}

// round4 rounds a confidence to 4 decimals, so outputs stay readable.
func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// ---- tokenize ----

var dataPath = regexp.MustCompile(`^\s*data\.([A-Za-z_][A-Za-z0-9_]*)\s*$`)

func buildTokenize(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	x, err := textExpr(c)
	if err != nil {
		return nil, err
	}
	tk, err := tokenizerOf(c)
	if err != nil {
		return nil, err
	}
	countF, err := dataField(c, "count_field", ns.CountField, "token_count")
	if err != nil {
		return nil, err
	}
	idsF, err := dataField(c, "ids_field", ns.IDsField, "")
	if err != nil {
		return nil, err
	}
	var textF string
	switch {
	case ns.MaxTokens < 0:
		return nil, c.Errorf("max_tokens", "max_tokens must be > 0")
	case ns.MaxTokens == 0 && ns.TextField != "":
		return nil, c.Errorf("text_field", "text_field applies only with max_tokens")
	case ns.MaxTokens > 0:
		def := "text"
		if ns.Text != "" {
			def = ""
			if m := dataPath.FindStringSubmatch(ns.Text); m != nil {
				def = m[1]
			}
		}
		if textF, err = dataField(c, "text_field", ns.TextField, def); err != nil {
			return nil, err
		}
		if textF == "" {
			return nil, c.Errorf("max_tokens", "give text_field, the field the cut text goes to (text %q is not a data field)", ns.Text)
		}
	}
	var keys []string
	if idsF != "" {
		keys = append(keys, idsF)
	}
	keys = append(keys, countF)
	if textF != "" {
		keys = append(keys, textF, "truncated")
	}
	n := newTextOp(c, "tokenize")
	raws := make([][]byte, len(keys))
	vals := make([]any, len(keys))
	var idsBuf, numBuf, textBuf []byte
	max := ns.MaxTokens
	n.proc = func(ev *Event) error {
		text, err := evalText(x, ev)
		if err != nil {
			return err
		}
		var ids []int
		head, cut := text, false
		if max > 0 {
			if head, ids, cut, err = tk.Truncate(text, max); err != nil {
				return err
			}
		} else {
			ids = tk.Encode(text)
		}
		k := 0
		if idsF != "" {
			b := append(idsBuf[:0], '[')
			for i, id := range ids {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, int64(id), 10)
			}
			idsBuf = append(b, ']')
			raws[k] = idsBuf
			k++
		}
		numBuf = strconv.AppendInt(numBuf[:0], int64(len(ids)), 10)
		raws[k], vals[k] = numBuf, float64(len(ids))
		k++
		if textF != "" {
			textBuf = appendJSONString(textBuf[:0], head)
			raws[k], vals[k] = textBuf, head
			raws[k+1], vals[k+1] = strconv.AppendBool(nil, cut), cut
		}
		if idsF != "" {
			n.emit(0, withFields(ev, keys, raws, nil)) // ids: decoded when read
		} else {
			n.emit(0, withFields(ev, keys, raws, vals))
		}
		return nil
	}
	return n, nil
}

// ---- chunk ----

func buildChunk(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	x, err := textExpr(c)
	if err != nil {
		return nil, err
	}
	ch := &ai.Chunker{Size: ns.Size, Overlap: ns.Overlap}
	unit := "runes"
	switch ns.By {
	case "", "runes":
		if ns.Encoding != "" {
			return nil, c.Errorf("encoding", "encoding applies only with by: tokens")
		}
	case "tokens":
		unit = "tokens"
		if ch.Tokenizer, err = tokenizerOf(c); err != nil {
			return nil, err
		}
	default:
		return nil, c.Errorf("by", "by %q: want runes or tokens", ns.By)
	}
	if ns.Size <= 0 {
		return nil, c.Errorf("size", "op chunk needs size > 0 (%s per chunk)", unit)
	}
	if ns.Overlap < 0 || ns.Overlap >= ns.Size {
		return nil, c.Errorf("overlap", "overlap %d must be >= 0 and < size %d", ns.Overlap, ns.Size)
	}
	idSrc, idGiven := ns.ID, ns.ID != ""
	if !idGiven {
		idSrc = "data.id"
	}
	idx, err := c.Expr("id", idSrc, false)
	if err != nil {
		return nil, err
	}
	n := newTextOp(c, "chunk")
	var chunks []ai.Chunk
	n.proc = func(ev *Event) error {
		text, err := evalText(x, ev)
		if err != nil {
			return err
		}
		id, _, err := idx.JSON(ev)
		if err != nil {
			if idGiven {
				return fmt.Errorf("id: %w", err)
			}
			id = nil // the default data.id on data that is no object
		}
		if string(id) == "null" {
			id = nil
		}
		if chunks, err = ch.Split(chunks[:0], text); err != nil {
			return err
		}
		if len(chunks) == 0 {
			n.stats.Dropped(1) // empty text: nothing to emit
			return nil
		}
		// all the chunks' data in one allocation
		size := 0
		for _, k := range chunks {
			size += 96 + len(id) + (k.End-k.Start)*6/5
		}
		buf := make([]byte, 0, size)
		for i, k := range chunks {
			start := len(buf)
			buf = append(buf, '{')
			if id != nil {
				buf = append(buf, `"id":`...)
				buf = append(buf, id...)
				buf = append(buf, ',')
			}
			buf = append(buf, `"chunk_index":`...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, `,"chunk_count":`...)
			buf = strconv.AppendInt(buf, int64(len(chunks)), 10)
			buf = append(buf, `,"start":`...)
			buf = strconv.AppendInt(buf, int64(k.Start), 10)
			buf = append(buf, `,"end":`...)
			buf = strconv.AppendInt(buf, int64(k.End), 10)
			if ch.Tokenizer != nil {
				buf = append(buf, `,"tokens":`...)
				buf = strconv.AppendInt(buf, int64(k.Units), 10)
			}
			buf = append(buf, `,"text":`...)
			buf = appendJSONString(buf, text[k.Start:k.End])
			buf = append(buf, '}')
			n.emit(0, ev.WithData(buf[start:len(buf):len(buf)], nil))
		}
		return nil
	}
	return n, nil
}

// ---- sentiment ----

func buildSentiment(c *BuildContext) (operators.Node, error) {
	x, err := textExpr(c)
	if err != nil {
		return nil, err
	}
	n := newTextOp(c, "sentiment")
	if c.Opts.checkOnly {
		return n, nil
	}
	v := ai.NewVader()
	keys := []string{"sentiment"}
	raws := make([][]byte, 1)
	vals := make([]any, 1)
	var buf []byte
	n.proc = func(ev *Event) error {
		text, err := evalText(x, ev)
		if err != nil {
			return err
		}
		s := v.Scores(text)
		b := append(buf[:0], `{"compound":`...)
		b = appendFloat(b, s.Compound)
		b = append(b, `,"pos":`...)
		b = appendFloat(b, s.Pos)
		b = append(b, `,"neg":`...)
		b = appendFloat(b, s.Neg)
		b = append(b, `,"neu":`...)
		b = appendFloat(b, s.Neu)
		buf = append(b, '}')
		raws[0] = buf
		vals[0] = map[string]any{"compound": s.Compound, "pos": s.Pos, "neg": s.Neg, "neu": s.Neu}
		n.emit(0, withFields(ev, keys, raws, vals))
		return nil
	}
	return n, nil
}

// ---- classify ----

// classifier is what a classify node decides with.
type classifier struct {
	rules   *ai.Rules
	conds   []*Expr // per rule: its `if`, or nil
	model   *ai.NaiveBayes
	train   *Expr
	cur     *Event // the event being classified, for conds
	persist *modelStore
	rep     *reporter
}

// cond evaluates rule i's `if`: one that fails does not match (counted
// and logged), as a router's route is not taken.
func (cl *classifier) cond(i int) (bool, error) {
	ok, err := cl.conds[i].Bool(cl.cur)
	if err != nil {
		cl.rep.fail(err, "rule "+cl.rules.Rule(i).Label+" (no match)")
	}
	return ok, nil
}

func buildClassify(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	x, err := textExpr(c)
	if err != nil {
		return nil, err
	}
	cl := &classifier{}
	var rules []ai.Rule
	for i, r := range ns.Rules {
		ru := ai.Rule{Label: r.Label, Keywords: r.Keywords, Cond: r.If != ""}
		if r.Confidence != nil {
			if *r.Confidence <= 0 || *r.Confidence > 1 {
				return nil, c.Errorf("rules", "rules[%d]: confidence %v: want a number in (0, 1]", i, *r.Confidence)
			}
			ru.Confidence = *r.Confidence
		}
		if r.Regex != "" {
			if ru.Regex, err = regexp.Compile(r.Regex); err != nil {
				return nil, c.Errorf("rules", "rules[%d]: regex %q: %v", i, r.Regex, err)
			}
		}
		var cond *Expr
		if r.If != "" {
			if cond, err = c.Expr("rules", r.If, true); err != nil {
				return nil, err
			}
		}
		cl.conds = append(cl.conds, cond)
		rules = append(rules, ru)
	}
	if cl.rules, err = ai.NewRules(rules); err != nil {
		return nil, c.Errorf("rules", "%v", err)
	}
	switch ns.Model {
	case "":
		if ns.Train != "" {
			return nil, c.Errorf("train", "train applies only with model: naive_bayes")
		}
		if ns.Max != 0 {
			return nil, c.Errorf("max", "max (the vocabulary size) applies only with model: naive_bayes")
		}
		if len(ns.Rules) == 0 {
			return nil, c.Errorf("", "op classify needs rules: [{label, keywords, regex, if}, …] or model: naive_bayes")
		}
	case "naive_bayes":
		src := ns.Train
		if src == "" {
			src = "data.label"
		}
		if cl.train, err = c.Expr("train", src, false); err != nil {
			return nil, err
		}
		if ns.Max < 0 {
			return nil, c.Errorf("max", "max (the vocabulary size) must be > 0")
		}
		cl.model = &ai.NaiveBayes{MaxVocab: ns.Max}
	default:
		return nil, c.Errorf("model", "model %q: want naive_bayes", ns.Model)
	}
	th := ns.ConfidenceThreshold
	if th < 0 || th > 1 {
		return nil, c.Errorf("confidence_threshold", "confidence_threshold %v: want a number in [0, 1]", th)
	}
	var n *textOp
	defer func() {
		if n != nil {
			cl.rep = n.rep
		}
	}()
	if cl.model != nil {
		n = newTextOp(c, "classify", "low", "trained")
		if !c.Opts.checkOnly {
			st, b, err := c.storeBatcher("classify model")
			if err != nil {
				return nil, err
			}
			cl.persist = &modelStore{st: st, b: b, ns: ClassifyNamespace(c.Spec.Name, ns.Name), rep: n.rep}
			n.onOpen = func(*operators.Flow) error { return cl.persist.load(cl.model) }
			n.after = cl.persist.b.Flush
		}
	} else {
		n = newTextOp(c, "classify", "low")
	}
	const low, trained = 1, 2
	keys := []string{"label", "confidence"}
	raws := make([][]byte, 2)
	vals := make([]any, 2)
	var labBuf, confBuf []byte
	n.proc = func(ev *Event) error {
		if cl.model != nil {
			lv, err := cl.train.run(ev)
			if err != nil {
				return fmt.Errorf("train: %w", err)
			}
			if lv != nil {
				label, ok := lv.(string)
				if !ok {
					return fmt.Errorf("train: %s is a %T, not a string", cl.train.Src, lv)
				}
				text, err := evalText(x, ev)
				if err != nil {
					return err
				}
				ids, err := cl.model.Train(label, text)
				if err != nil {
					return err
				}
				if cl.persist != nil {
					cl.persist.save(cl.model, label, ids)
				}
				n.emit(trained, *ev)
				return nil
			}
		}
		text, err := evalText(x, ev)
		if err != nil {
			return err
		}
		cl.cur = ev
		i, _ := cl.rules.Match(text, cl.cond)
		cl.cur = nil
		var label any
		conf := 0.0
		switch {
		case i >= 0:
			r := cl.rules.Rule(i)
			label, conf = r.Label, r.Confidence
		case cl.model != nil:
			if l, p, ok := cl.model.Predict(text); ok {
				label, conf = l, round4(p)
			}
		}
		if label == nil {
			raws[0] = append(labBuf[:0], "null"...)
		} else {
			raws[0] = appendJSONString(labBuf[:0], label.(string))
		}
		labBuf = raws[0]
		confBuf = appendFloat(confBuf[:0], conf)
		raws[1] = confBuf
		vals[0], vals[1] = label, conf
		out := withFields(ev, keys, raws, vals)
		if conf < th {
			n.emit(low, out)
		} else {
			n.emit(0, out)
		}
		return nil
	}
	return n, nil
}

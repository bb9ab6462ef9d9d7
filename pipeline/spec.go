package pipeline

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Spec is one pipeline of the YAML config (DESIGN.md, "Config shape"):
//
//   - name: scoring
//     input: {stream: market}
//     nodes:
//   - {name: relevant, op: filter, if: "data.relevance_score > 0.7"}
//   - {name: trend, op: aggregate, key: "data.symbol", window: {tumbling: 5s}, fn: avg, field: "data.price"}
//     output: {room: market_analysis}
//
// Nodes run in the order listed unless Edges says otherwise.
type Spec struct {
	Name  string     `yaml:"name"`
	Input InputSpec  `yaml:"input"`
	Nodes []NodeSpec `yaml:"nodes"`
	// Edges connects nodes explicitly, one "from -> to" per entry; from
	// and to are node names, "input", "output", or "node.port" for a
	// named port (a router's route, an aggregate's "late", a fallible
	// node's "error", a zip's "left"/"right").
	Edges []string `yaml:"edges"`
	// Output is where the pipeline's output goes; Outputs lists several.
	Output  *OutputSpec  `yaml:"output"`
	Outputs []OutputSpec `yaml:"outputs"`
	// Checkpoint, when set, makes the pipeline exactly-once: every
	// Checkpoint interval its aggregates' windows, its state-sink writes,
	// its room outputs and its input positions are committed in one
	// transaction (checkpoint.go, docs/durability.md).
	Checkpoint time.Duration `yaml:"checkpoint"`

	node ast.Node // for error positions
}

// InputSpec says where a pipeline's events come from. Exactly one of
// Stream, Generator, File, Stdin and Documents is set.
type InputSpec struct {
	// Stream: `event` messages whose stream is this name, and POSTs to
	// /ingest?stream=NAME.
	Stream string `yaml:"stream"`
	// Generator: a synthetic feed, for demos and benchmarks.
	Generator *GeneratorSpec `yaml:"generator"`
	// File: a JSON-lines file, read once from the start.
	File string `yaml:"file"`
	// Stdin: JSON lines from standard input.
	Stdin bool `yaml:"stdin"`
	// Overflow is what a full pipeline queue does with one more event
	// from a WebSocket client (docs/backpressure.md): "block" (default:
	// the connection's loop waits, TCP pushes back) or "drop-newest" (the
	// event is dropped, counted, and answered `overloaded`). Other inputs
	// always wait.
	Overflow string `yaml:"overflow"`

	// AI model/vector ops (docs/ai.md)
	// Documents: the files of a directory, polled for new ones.
	Documents *DocumentsSpec `yaml:"documents"`
}

// GeneratorSpec configures a synthetic feed.
type GeneratorSpec struct {
	// Kind is "market" (ticks: symbol, price, qty, relevance_score, ts)
	// or "counter" ({"n": 1, 2, …}). Default "market".
	Kind string `yaml:"kind"`
	// Rate is events per second. Default 100.
	Rate float64 `yaml:"rate"`
	// Symbols are the market symbols. Default AAPL, MSFT, NVDA, AMZN, GOOG.
	Symbols []string `yaml:"symbols"`
	// Limit stops after this many events (0: never).
	Limit int64 `yaml:"limit"`
	// Seed makes the feed repeatable. Default 1.
	Seed int64 `yaml:"seed"`
}

// OutputSpec is one destination. Exactly one field is set.
type OutputSpec struct {
	// Room publishes each event's data into this room.
	Room string `yaml:"room"`
	// Reply sends each event back to its sender as a `result`.
	Reply bool `yaml:"reply"`
	// Log appends each event as one JSON line to this file ("-" is stdout).
	Log string `yaml:"log"`
	// Webhook POSTs each event's data to a URL.
	Webhook *WebhookSpec `yaml:"webhook"`
}

// WebhookSpec configures a webhook output.
type WebhookSpec struct {
	URL string `yaml:"url"`
	// Timeout per attempt. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries after a failed attempt (5xx, timeout, refused), with
	// exponential backoff from 100ms. Default 3.
	Retries *int `yaml:"retries"`
	// Queue is how many events may wait for the webhook before new ones
	// are dropped (and counted). Default 1024.
	Queue int `yaml:"queue"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
}

// NodeSpec is one node. Name and Op are required; the other fields apply
// to the ops docs/pipelines.md lists them under (a field set on an op it
// does not apply to is an error).
type NodeSpec struct {
	Name string `yaml:"name"`
	Op   string `yaml:"op"`

	If          string          `yaml:"if"`           // filter
	Set         yaml.MapSlice   `yaml:"set"`          // map: field: expression
	To          string          `yaml:"to"`           // map: data = expression
	Each        string          `yaml:"each"`         // flat_map: expression giving an array
	Concurrency ConcurrencySpec `yaml:"concurrency"`  // map: N, or {min, max, high, low, every}
	Ordered     *bool           `yaml:"ordered"`      // map with concurrency
	Key         string          `yaml:"key"`          // aggregate, dedup, debounce
	Field       string          `yaml:"field"`        // aggregate
	Fn          stringList      `yaml:"fn"`           // aggregate
	Window      *WindowSpec     `yaml:"window"`       // aggregate; dedup (duration)
	Time        string          `yaml:"time"`         // aggregate: event-time expression
	Lateness    time.Duration   `yaml:"lateness"`     // aggregate: allowed lateness (event time)
	OutOfOrder  time.Duration   `yaml:"out_of_order"` // aggregate: watermark delay (event time)
	Routes      []RouteSpec     `yaml:"routes"`       // router
	Mode        string          `yaml:"mode"`         // router: first | all
	Duration    time.Duration   `yaml:"duration"`     // debounce, throttle, buffer_time, window, dedup
	Count       int             `yaml:"count"`        // buffer, window
	Max         int             `yaml:"max"`          // buffer_time, dedup
	Trailing    bool            `yaml:"trailing"`     // throttle
	Retry       *RetrySpec      `yaml:"retry"`        // map
	Room        string          `yaml:"room"`         // room sink
	Path        string          `yaml:"path"`         // log sink
	Webhook     *WebhookSpec    `yaml:"webhook"`      // webhook sink
	Extra       map[string]any  `yaml:"with"`         // custom ops registered in Go

	// AI text ops (docs/ai.md); they also use key, duration and max
	// (cache), max (classify) and set (enrich)
	Text                string          `yaml:"text"`                 // tokenize, chunk, classify, sentiment, enrich: expression of the text (default data.text)
	Encoding            string          `yaml:"encoding"`             // tokenize, chunk, enrich: cl100k_base (default) or o200k_base
	IDsField            string          `yaml:"ids_field"`            // tokenize: data field for the token ids
	CountField          string          `yaml:"count_field"`          // tokenize, enrich: data field for the token count
	MaxTokens           int             `yaml:"max_tokens"`           // tokenize: keep the first N tokens
	TextField           string          `yaml:"text_field"`           // tokenize: data field for the truncated text
	By                  string          `yaml:"by"`                   // chunk: runes (default) or tokens
	Size                int             `yaml:"size"`                 // chunk: runes or tokens per chunk
	Overlap             int             `yaml:"overlap"`              // chunk: runes or tokens two neighbours share
	ID                  string          `yaml:"id"`                   // chunk: expression of the source's id (default data.id)
	Rules               []ClassRuleSpec `yaml:"rules"`                // classify: keyword, regex and expression rules
	Model               string          `yaml:"model"`                // classify: naive_bayes; enrich: the model name written
	Train               string          `yaml:"train"`                // classify: expression of a training label (default data.label)
	ConfidenceThreshold float64         `yaml:"confidence_threshold"` // classify: below it, out of the low port
	Timestamp           string          `yaml:"timestamp"`            // enrich: data field for the processing time (Unix ms)
	Do                  *NodeSpec       `yaml:"do"`                   // cache: the node whose results are memoized

	// AI model/vector ops (docs/ai.md)
	Embed      *EmbedSpec      `yaml:"embed"`      // embed
	Similarity *SimilaritySpec `yaml:"similarity"` // similarity, dedup_semantic
	LLM        *LLMSpec        `yaml:"llm"`        // llm
	Qdrant     *QdrantSpec     `yaml:"qdrant"`     // qdrant

	node ast.Node
}

// WindowSpec is an aggregate's window; exactly one kind is set.
type WindowSpec struct {
	Count    int           `yaml:"count"`
	Tumbling time.Duration `yaml:"tumbling"`
	Sliding  *SlidingSpec  `yaml:"sliding"`
	Session  time.Duration `yaml:"session"` // the gap
}

// SlidingSpec is a sliding window's size and slide.
type SlidingSpec struct {
	Size  time.Duration `yaml:"size"`
	Slide time.Duration `yaml:"slide"`
}

// RouteSpec is one route of a router.
type RouteSpec struct {
	Name string `yaml:"name"`
	If   string `yaml:"if"`
}

// ConcurrencySpec is a map's `concurrency`: a fixed pool of N workers
// (`concurrency: 8`) or an adaptive one (`concurrency: {min: 1, max: 8,
// high: 4, low: 0, every: 100ms}`), whose size follows its queue between
// Min and Max (operators.AdaptiveConcurrency). The zero value is no
// concurrency (the map runs on the flow's goroutine).
type ConcurrencySpec struct {
	// N is the fixed form's number of workers.
	N int `yaml:"-"`
	// Adaptive is true for the mapping form; the fields below are its.
	Adaptive bool `yaml:"-"`
	// Min is the fewest workers. Default 1.
	Min int `yaml:"min"`
	// Max is the most workers (at most 1024). Required.
	Max int `yaml:"max"`
	// High: the pool grows while at least this many events wait for a
	// worker. Default 0: as many as there are workers.
	High int `yaml:"high"`
	// Low: the pool shrinks while at most this many wait. Default 0.
	Low int `yaml:"low"`
	// Every is how often the queue is sampled. Default 100ms.
	Every time.Duration `yaml:"every"`

	node ast.Node // the mapping, for error positions
}

// Set reports whether the map runs on a pool (either form).
func (c *ConcurrencySpec) Set() bool { return c.N != 0 || c.Adaptive }

type concurrencyFields ConcurrencySpec

// UnmarshalYAML accepts an integer (the fixed form) or a mapping (the
// adaptive form), strictly.
func (c *ConcurrencySpec) UnmarshalYAML(n ast.Node) error {
	*c = ConcurrencySpec{}
	switch n.Type() {
	case ast.NullType:
		return nil
	case ast.IntegerType:
		return yaml.NodeToValue(n, &c.N)
	}
	if _, ok := n.(ast.MapNode); !ok {
		return &yaml.SyntaxError{Message: "concurrency: want a number of workers (8) or a range ({min: 1, max: 8})", Token: n.GetToken()}
	}
	if err := yaml.NodeToValue(n, (*concurrencyFields)(c), yaml.Strict()); err != nil {
		return err
	}
	c.Adaptive, c.node = true, n
	return nil
}

// RetrySpec retries a failing map.
type RetrySpec struct {
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
	MaxDelay time.Duration `yaml:"max_backoff"`
}

// stringList accepts `fn: avg` and `fn: [avg, max]`.
type stringList []string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (l *stringList) UnmarshalYAML(n ast.Node) error {
	if n.Type() == ast.SequenceType {
		var s []string
		if err := yaml.NodeToValue(n, &s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	var s string
	if err := yaml.NodeToValue(n, &s); err != nil {
		return err
	}
	*l = stringList{s}
	return nil
}

type specFields Spec
type nodeFields NodeSpec

// UnmarshalYAML decodes strictly and keeps the node for error positions.
func (s *Spec) UnmarshalYAML(n ast.Node) error {
	if err := yaml.NodeToValue(n, (*specFields)(s), yaml.Strict()); err != nil {
		return err
	}
	s.node = n
	return nil
}

// UnmarshalYAML decodes strictly and keeps the node for error positions.
func (ns *NodeSpec) UnmarshalYAML(n ast.Node) error {
	if err := yaml.NodeToValue(n, (*nodeFields)(ns), yaml.Strict()); err != nil {
		return err
	}
	ns.node = n
	return nil
}

// ParseYAML decodes a list of pipelines (the value of `pipelines:`).
func ParseYAML(src []byte) ([]Spec, error) {
	var specs []Spec
	if err := yaml.UnmarshalWithOptions(src, &specs, yaml.Strict()); err != nil {
		return nil, err
	}
	return specs, nil
}

// equal reports whether two node specs define the same node.
func (ns *NodeSpec) equal(o *NodeSpec) bool {
	a, b := *ns, *o
	a.node, b.node = nil, nil
	a.Concurrency.node, b.Concurrency.node = nil, nil
	a.Do, b.Do = nil, nil // a cache's node: compared without its position
	if (ns.Do == nil) != (o.Do == nil) || ns.Do != nil && !ns.Do.equal(o.Do) {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// keysSet lists the YAML keys written in a node's mapping.
func keysSet(n ast.Node) []string {
	m, ok := n.(ast.MapNode)
	if !ok {
		return nil
	}
	var keys []string
	for it := m.MapRange(); it.Next(); {
		keys = append(keys, it.Key().String())
	}
	return keys
}

// tokenOf returns the token of key's value in mapping n, or n's own.
func tokenOf(n ast.Node, key string) *token.Token {
	if n == nil {
		return nil
	}
	if m, ok := n.(ast.MapNode); ok && key != "" {
		for it := m.MapRange(); it.Next(); {
			if it.Key().String() == key {
				return it.Value().GetToken()
			}
		}
	}
	return n.GetToken()
}

// specError is an error at a place in the config: a yaml.Error, so the
// command prints it as FILE:LINE:COL with the source lines.
func specError(n ast.Node, key, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	tok := tokenOf(n, key)
	if tok == nil {
		return fmt.Errorf("pipeline: %s", msg)
	}
	return &yaml.SyntaxError{Message: msg, Token: tok}
}

// parseEdge splits "from -> to".
func parseEdge(s string) (from, to string, ok bool) {
	from, to, ok = strings.Cut(s, "->")
	from, to = strings.TrimSpace(from), strings.TrimSpace(to)
	return from, to, ok && from != "" && to != ""
}

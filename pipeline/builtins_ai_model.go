package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"streamd/aimodel"
	"streamd/operators"
	"streamd/protocol"
)

// Model and vector ops (docs/ai.md, "Model and vector operators"):
// embed, similarity, dedup_semantic, llm and the qdrant sink, and the
// documents input. Each op has its settings under a key of its own name
// (embed: {…}, llm: {…}, …), like webhook: {…}.

func init() { extraBuiltins = append(extraBuiltins, registerAIModel) }

func registerAIModel(r *Registry) {
	r.Register("embed", OpDef{
		Doc: "sets data.embedding (embed.field) to the vector of the text (embed.text): offline feature hashing (provider: hashing, default) " +
			"or an OpenAI-compatible POST /embeddings (provider: openai), batched, cached, retried, rate-limited, behind a circuit breaker; order kept; failures leave on `error`",
		Fields: []string{"embed"},
		Build:  buildEmbed,
	})
	r.Register("similarity", OpDef{
		Doc:    "tags each event with the cosine `similarity` of its vector to the nearest of a window of recent vectors or of a reference set, and that one's id (`nearest`)",
		Fields: []string{"similarity"},
		Build:  func(c *BuildContext) (operators.Node, error) { return buildVecNode(c, false) },
	})
	r.Register("dedup_semantic", OpDef{
		Doc:    "drops (or tags, action: tag) the events whose vector has a cosine similarity ≥ threshold to one of a window of recent kept vectors or of a reference set",
		Fields: []string{"similarity"},
		Build:  func(c *BuildContext) (operators.Node, error) { return buildVecNode(c, true) },
	})
	r.Register("llm", OpDef{
		Doc: "sends a prompt made from the event to an OpenAI-compatible POST /chat/completions with stream: true and relays each delta as it arrives " +
			"as an agent_response message to the sender (llm.reply) or a room (llm.room); then emits the event with the whole `response` and `usage`; failures leave on `error`",
		Fields: []string{"llm"},
		Build:  buildLLM,
	})
	r.Register("qdrant", OpDef{
		Doc: "upserts each event's vector (qdrant.field) with its data as payload into a Qdrant collection, batched by count and time, retried; " +
			"events leave on the main output once Qdrant has them, failures on `error`",
		Fields: []string{"qdrant"},
		Build:  buildQdrant,
	})
}

// ServiceSpec is what the ops that call a server (embed with provider
// openai, llm, qdrant) share.
type ServiceSpec struct {
	// URL is the API root: "https://api.openai.com/v1",
	// "http://127.0.0.1:11434/v1" (Ollama), "http://127.0.0.1:6333"
	// (Qdrant).
	URL string `yaml:"url"`
	// APIKeyEnv names the environment variable holding the API key
	// (default OPENAI_API_KEY, QDRANT_API_KEY for qdrant); APIKey gives
	// it in the config instead. The key is never logged.
	APIKeyEnv string `yaml:"api_key_env"`
	APIKey    string `yaml:"api_key"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds each attempt (llm: the whole stream). Defaults: 30s,
	// llm 2m, qdrant 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries after a failed attempt (429, 5xx, network errors, timeouts),
	// with backoff from Backoff (default 100ms) doubling up to MaxBackoff
	// (default 5s); a Retry-After answer is honoured. Default 3.
	Retries    *int          `yaml:"retries"`
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Concurrency is how many requests run at once. Default 4 (qdrant 2).
	Concurrency int `yaml:"concurrency"`
	// Rate caps requests per second (attempts included); 0: no cap.
	Rate float64 `yaml:"rate"`
	// Breaker opens after Failures consecutive failed attempts (default
	// 5; 0 turns it off when the key is given) and lets a probe through
	// after Cooldown (default 10s).
	Breaker *BreakerSpec `yaml:"breaker"`
	// MaxInFlight bounds the events inside the node (waiting for a batch,
	// a request or their turn to leave in order). Default 4 ×
	// concurrency × batch size (llm: 4 × concurrency).
	MaxInFlight int `yaml:"max_in_flight"`
	// Overflow is what happens to an event that comes when MaxInFlight
	// are in: "block" (default; the node waits, which slows its input
	// down) or "error" (the event leaves on `error` with reason
	// overloaded).
	Overflow string `yaml:"overflow"`
}

// BreakerSpec configures a circuit breaker.
type BreakerSpec struct {
	Failures *int          `yaml:"failures"`
	Cooldown time.Duration `yaml:"cooldown"`
}

// EmbedSpec configures an embed node.
type EmbedSpec struct {
	// Provider is "hashing" (default: offline, deterministic) or
	// "openai" (POST {url}/embeddings).
	Provider string `yaml:"provider"`
	// Text is the expression of the text embedded. Default data.text.
	Text string `yaml:"text"`
	// Field is the data field set to the vector. Default embedding.
	Field string `yaml:"field"`
	// Model is the embedding model (openai: required).
	Model string `yaml:"model"`
	// Dimensions is the vector size: hashing (default 256), or, for
	// openai, the "dimensions" request field (left out when 0).
	Dimensions int `yaml:"dimensions"`
	// BatchSize is how many texts one request carries at most (default
	// 32); MaxWait is how long a partial batch waits for more (default
	// 5ms).
	BatchSize int           `yaml:"batch_size"`
	MaxWait   time.Duration `yaml:"max_wait"`
	// Cache is how many embeddings are kept, by SHA-256 of model and
	// text (least recently used evicted; default 10000; 0: none).
	Cache *int `yaml:"cache"`

	ServiceSpec `yaml:",inline"`
}

// SimilaritySpec configures a similarity or dedup_semantic node.
type SimilaritySpec struct {
	// Field is the data field holding the vector (a dotted path).
	// Default embedding.
	Field string `yaml:"field"`
	// ID is the expression of an event's id, reported as `nearest`.
	// Default: the event's position at the node (1, 2, …).
	ID string `yaml:"id"`
	// Window is how many recent vectors are compared (default 1000);
	// Duration also drops those older than this (flow clock).
	Window   int           `yaml:"window"`
	Duration time.Duration `yaml:"duration"`
	// Reference is a fixed set compared instead of a window, given inline
	// or in a JSON file (an array of the same objects).
	Reference     []ReferenceSpec `yaml:"reference"`
	ReferenceFile string          `yaml:"reference_file"`
	// Dimensions is the size of the hashing embeddings of reference
	// entries given as text (default 256: match the embed node's).
	Dimensions int `yaml:"dimensions"`
	// Threshold is dedup_semantic's similarity from which an event is a
	// duplicate. Default 0.95.
	Threshold *float64 `yaml:"threshold"`
	// Action is dedup_semantic's: "drop" (default) or "tag".
	Action string `yaml:"action"`
}

// ReferenceSpec is one entry of a reference set: its id and its vector,
// or a text embedded with the offline hashing embedder.
type ReferenceSpec struct {
	ID     any       `yaml:"id" json:"id"`
	Vector []float32 `yaml:"vector" json:"vector"`
	Text   string    `yaml:"text" json:"text"`
}

// LLMSpec configures an llm node.
type LLMSpec struct {
	// Model is the chat model (required).
	Model string `yaml:"model"`
	// Prompt is the user message and System the optional system message:
	// templates where {{path}} is replaced by the field at that dotted
	// path of the event's data (strings as they are, other values as
	// JSON; a missing field fails the event with reason bad_input).
	Prompt string `yaml:"prompt"`
	System string `yaml:"system"`
	// MaxTokens and Temperature are sent when set.
	MaxTokens   int      `yaml:"max_tokens"`
	Temperature *float64 `yaml:"temperature"`
	// Reply streams the agent_response messages to the event's sender (as
	// the data of `result`s); Room publishes them into a room (a template
	// too). Neither: nothing is streamed, only the final event leaves.
	Reply bool   `yaml:"reply"`
	Room  string `yaml:"room"`
	// AgentID is the messages' agent_id. Default the node's name.
	AgentID string `yaml:"agent_id"`
	// RequestID is the expression of the messages' request_id. Default
	// the event message's id, or NODE-N when it has none.
	RequestID string `yaml:"request_id"`
	// Field is the data field set to the whole answer. Default response.
	Field string `yaml:"field"`
	// IdleTimeout ends a stream silent this long (default 30s);
	// ListenCheck is how often a stream checks that someone still
	// listens (default 250ms).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	ListenCheck time.Duration `yaml:"listen_check"`

	ServiceSpec `yaml:",inline"`
}

// QdrantSpec configures a qdrant node.
type QdrantSpec struct {
	// Collection is the Qdrant collection (required; it must exist).
	Collection string `yaml:"collection"`
	// Field is the data field holding the vector. Default embedding.
	Field string `yaml:"field"`
	// VectorName puts the vector under that name (collections with named
	// vectors).
	VectorName string `yaml:"vector_name"`
	// ID is the expression of the point id: a non-negative integer and a
	// UUID are used as they are, anything else becomes a UUID v5 of its
	// text. Default: the UUID v5 of the event's data.
	ID string `yaml:"id"`
	// Payload is the expression of the payload (an object). Default: the
	// event's data without the vector field.
	Payload string `yaml:"payload"`
	// BatchSize is how many points one request carries at most (default
	// 64); MaxWait is how long a partial batch waits (default 100ms).
	BatchSize int           `yaml:"batch_size"`
	MaxWait   time.Duration `yaml:"max_wait"`
	// Wait sends wait=true (default true): Qdrant answers once the points
	// are applied.
	Wait *bool `yaml:"wait"`

	ServiceSpec `yaml:",inline"`
}

// DocumentsSpec configures a documents input.
type DocumentsSpec struct {
	// Dir is the directory read.
	Dir string `yaml:"dir"`
	// Pattern is a glob on file names. Default "*".
	Pattern string `yaml:"pattern"`
	// Poll is how often the directory is listed. Default 1s.
	Poll time.Duration `yaml:"poll"`
	// Settle is how old a file must be before it is read (default 1s;
	// negative: at once).
	Settle time.Duration `yaml:"settle"`
	// MaxSize skips larger files. Default 16 MiB.
	MaxSize int64 `yaml:"max_size"`
}

// Options returns the aimodel options of s.
func (s *DocumentsSpec) Options() aimodel.DocumentsOptions {
	return aimodel.DocumentsOptions{Dir: s.Dir, Pattern: s.Pattern, Poll: s.Poll, Settle: s.Settle, MaxSize: s.MaxSize}
}

func checkDocuments(s *DocumentsSpec) error {
	if s == nil {
		return nil
	}
	if s.Dir == "" {
		return fmt.Errorf("needs dir")
	}
	if s.Pattern != "" {
		if _, err := filepath.Match(s.Pattern, "x"); err != nil {
			return fmt.Errorf("pattern %q: %v", s.Pattern, err)
		}
	}
	if s.Poll < 0 || s.MaxSize < 0 {
		return fmt.Errorf("poll and max_size must not be negative")
	}
	return nil
}

// ListenerHost is implemented by a Host that can tell whether anyone
// still listens for what a node streams (the engine's does). The llm op
// uses it to cancel a stream nobody would see. Unlike Host's, both
// methods are safe from any goroutine. A Host without them is taken to
// have listeners always.
type ListenerHost interface {
	Host
	// Listening reports whether room has members (or Go subscribers) now.
	Listening(room string) bool
	// Connected reports whether ev's sender is still connected (false for
	// an event without a sender).
	Connected(ev *Event) bool
}

// ---- shared helpers ----

// aiErrorEvent is an error record:
// {"error": MESSAGE, "reason": R, ["status": S,] "node": N, "attempts": A, "data": DATA}.
func aiErrorEvent(ev Event, node string, e *aimodel.Error) Event {
	return errorRecord(ev, e.Error(), string(e.Reason), e.Status, node, e.Attempts)
}

func badInput(format string, args ...any) *aimodel.Error {
	return &aimodel.Error{Reason: aimodel.ReasonBadInput, Err: fmt.Errorf(format, args...)}
}

// jsonPath returns the raw value at the dotted path of the JSON object data.
func jsonPath(data []byte, path []string) ([]byte, bool) {
	cur := data
	for _, seg := range path {
		var found []byte
		err := protocol.ForEachMember(cur, func(k []byte, s, e int) bool {
			if string(k) == seg {
				found = cur[s:e]
				return false
			}
			return true
		})
		if err != nil || found == nil {
			return nil, false
		}
		cur = found
	}
	return cur, true
}

// withoutField returns the JSON object data without its member key (a
// copy), or nil when data is not an object.
func withoutField(data []byte, key string) []byte {
	out := make([]byte, 0, len(data))
	out = append(out, '{')
	first := true
	err := protocol.ForEachMember(data, func(k []byte, s, e int) bool {
		if string(k) == key {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, k...)
		out = append(out, '"', ':')
		out = append(out, data[s:e]...)
		return true
	})
	if err != nil {
		return nil
	}
	return append(out, '}')
}

// fieldName checks a data field name (dotted for paths).
func fieldName(c *BuildContext, key, v, def string) ([]string, error) {
	if v == "" {
		v = def
	}
	parts := strings.Split(v, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "\"\\") {
			return nil, c.Errorf(key, "field %q: want a name or a dotted path", v)
		}
	}
	return parts, nil
}

// service is what a service op builds from a ServiceSpec.
type service struct {
	apiKey  string
	http    *http.Client
	tr      *http.Transport // closed with the node; nil when not ours
	policy  aimodel.Policy
	conc    int
	maxIn   int // 0: the op's default
	overErr bool
}

func httpURL(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// buildService checks s and makes its client parts; key is the YAML key
// of the op's settings, defEnv the default API key variable.
func buildService(c *BuildContext, key string, s *ServiceSpec, defEnv string, defConc int) (*service, error) {
	if s.URL == "" {
		return nil, c.Errorf(key, "needs url: the API root, e.g. http://127.0.0.1:11434/v1")
	}
	if !httpURL(s.URL) {
		return nil, c.Errorf(key, "url %q: want http:// or https://", s.URL)
	}
	sv := &service{conc: s.Concurrency, maxIn: s.MaxInFlight}
	if sv.conc == 0 {
		sv.conc = defConc
	}
	if sv.conc < 0 || s.MaxInFlight < 0 || s.Rate < 0 || s.Timeout < 0 || s.Backoff < 0 || s.MaxBackoff < 0 {
		return nil, c.Errorf(key, "concurrency, max_in_flight, rate, timeout and backoffs must not be negative")
	}
	switch s.Overflow {
	case "", "block":
	case "error":
		sv.overErr = true
	default:
		return nil, c.Errorf(key, "overflow %q: want block or error", s.Overflow)
	}
	sv.apiKey = s.APIKey
	if sv.apiKey == "" {
		env := s.APIKeyEnv
		if env == "" {
			env = defEnv
		}
		sv.apiKey = os.Getenv(env)
	}
	retries := 3
	if s.Retries != nil {
		retries = max(*s.Retries, 0)
	}
	failures, cooldown := 5, time.Duration(0)
	if b := s.Breaker; b != nil {
		if b.Failures != nil {
			failures = *b.Failures
		}
		cooldown = b.Cooldown
	}
	sv.policy = aimodel.Policy{Retries: retries, Backoff: s.Backoff, MaxBackoff: s.MaxBackoff,
		Breaker: aimodel.NewBreaker(failures, cooldown), Limiter: aimodel.NewLimiter(s.Rate, 1)}
	// A transport of the node's own, keeping a connection per request
	// that may run at once (the default keeps 2 per host).
	base := http.DefaultTransport
	if hc := c.Opts.HTTPClient; hc != nil && hc.Transport != nil {
		base = hc.Transport
	}
	if t, ok := base.(*http.Transport); ok {
		sv.tr = t.Clone()
		sv.tr.MaxIdleConnsPerHost = max(sv.conc, 2)
		sv.http = &http.Client{Transport: sv.tr}
	} else {
		sv.http = &http.Client{Transport: base}
	}
	return sv, nil
}

func (sv *service) close() {
	if sv != nil && sv.tr != nil {
		sv.tr.CloseIdleConnections()
	}
}

// template is a prompt template: literal text and {{path}} holes.
type template struct {
	src   string
	lit   []string   // len(paths)+1 pieces of literal text
	paths [][]string // dotted paths into data
}

func parseTemplate(src string) (*template, error) {
	t := &template{src: src}
	rest := src
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.lit = append(t.lit, rest)
			return t, nil
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("%q: {{ without }}", src)
		}
		name := strings.TrimSpace(rest[i+2 : i+2+j])
		if name == "" {
			return nil, fmt.Errorf("%q: empty {{}}", src)
		}
		t.lit = append(t.lit, rest[:i])
		t.paths = append(t.paths, strings.Split(name, "."))
		rest = rest[i+2+j+2:]
	}
}

// render fills the holes from ev's data (flow goroutine: it decodes data).
func (t *template) render(ev *Event) (string, error) {
	if len(t.paths) == 0 {
		return t.src, nil
	}
	v, err := ev.Value()
	if err != nil {
		return "", fmt.Errorf("data is not JSON: %v", err)
	}
	var b strings.Builder
	for i, p := range t.paths {
		b.WriteString(t.lit[i])
		cur := v
		for _, seg := range p {
			m, ok := cur.(map[string]any)
			if !ok {
				return "", fmt.Errorf("template field %s: missing", strings.Join(p, "."))
			}
			if cur, ok = m[seg]; !ok {
				return "", fmt.Errorf("template field %s: missing", strings.Join(p, "."))
			}
		}
		switch x := cur.(type) {
		case string:
			b.WriteString(x)
		case nil:
			return "", fmt.Errorf("template field %s: null", strings.Join(p, "."))
		default:
			j, err := json.Marshal(x)
			if err != nil {
				return "", err
			}
			b.Write(j)
		}
	}
	b.WriteString(t.lit[len(t.paths)])
	return b.String(), nil
}

// loadReference reads a reference file: a JSON array of {id, vector} or
// {id, text}.
func loadReference(path string) ([]ReferenceSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var refs []ReferenceSpec
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&refs); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of {id, vector} or {id, text}: %v", path, err)
	}
	return refs, nil
}

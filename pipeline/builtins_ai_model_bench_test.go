package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"streamd/aimodel"
	"streamd/operators"
)

const benchText = "The streaming engine routes every event through a pipeline of operators: it filters, maps and " +
	"aggregates them over windows, embeds their text into vectors, compares those vectors with recent " +
	"ones to find near duplicates, and stores them in a vector database, while clients watch the results " +
	"arrive in their rooms."

// countSink counts what reaches a pipeline's output.
type countSink struct{ n int }

func (h *countSink) Publish(string, []byte) error { h.n++; return nil }
func (h *countSink) Reply(*Event, []byte)         {}

func benchPipeline(b *testing.B, src string, h Host) *Pipeline {
	b.Helper()
	specs, err := ParseYAML([]byte(src))
	if err != nil {
		b.Fatal(err)
	}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(specs[0], f, Options{Host: h}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close(); _ = p.Close() })
	return p
}

// BenchmarkEmbedNodeHashing: the embed op, offline, on a ~50-word text
// (384 dimensions), batches of 64 events: its vector written into the
// event's JSON included.
func BenchmarkEmbedNodeHashing(b *testing.B) {
	h := &countSink{}
	p := benchPipeline(b, `
- name: e
  input: {stream: s}
  nodes:
    - {name: vec, op: embed, embed: {dimensions: 384}}
  output: {room: out}
`, h)
	data := []byte(`{"text":"` + benchText + `"}`)
	batch := make([]Event, 64)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = NewEvent("s", data, 0)
		}
		p.Input().Push(batch)
	}
	if h.n != b.N*len(batch) {
		b.Fatalf("%d out of %d", h.n, b.N*len(batch))
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "embeddings/s")
}

// BenchmarkSimilarityNode: the similarity op on events carrying 384- or
// 1536-dimension vectors (as JSON), against a full window of 1,000:
// parsing the vector and writing the tags included.
func BenchmarkSimilarityNode(b *testing.B) {
	for _, dims := range []int{384, 1536} {
		b.Run(fmt.Sprintf("dims=%d", dims), func(b *testing.B) {
			h := &countSink{}
			p := benchPipeline(b, `
- name: sim
  input: {stream: s}
  nodes:
    - {name: near, op: similarity, similarity: {window: 1000}}
  output: {room: out}
`, h)
			r := rand.New(rand.NewPCG(1, 2))
			evs := make([][]byte, 1100)
			for i := range evs {
				v := make([]float32, dims)
				for j := range v {
					v[j] = float32(r.NormFloat64())
				}
				evs[i] = append(append([]byte(`{"embedding":`), aimodel.AppendVector(nil, aimodel.Normalize(v))...), '}')
			}
			for i := range 1000 { // fill the window
				p.Input().PushOne(NewEvent("s", evs[i], 0))
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				p.Input().PushOne(NewEvent("s", evs[1000+i%100], 0))
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "comparisons/s")
		})
	}
}

// latencyHost records, for each output, now − the event's scheduled time
// (data.t, Unix ns).
type latencyHost struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	n  int
}

func (l *latencyHost) Publish(_ string, data []byte) error {
	var m struct {
		T int64 `json:"t"`
	}
	_ = json.Unmarshal(data, &m)
	d := time.Now().UnixNano() - m.T
	l.mu.Lock()
	_ = l.h.RecordValue(d / 1000) // µs
	l.n++
	l.mu.Unlock()
	return nil
}
func (l *latencyHost) Reply(*Event, []byte) {}

// BenchmarkEmbedBatchingLatency: what the embed op's batching adds at
// 1,000 events/s against a server that answers every request in 20 ms:
// an open loop (events are posted to the flow on a fixed schedule, each
// carrying its scheduled time, never waiting for outputs) for 5 s; the
// latency of each event from its scheduled time to its vector leaving
// the node goes into an HdrHistogram. Reported in ms: p50, p99, max.
// One run per b.N (run it with -benchtime 1x).
func BenchmarkEmbedBatchingLatency(b *testing.B) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req struct{ Input []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		time.Sleep(20 * time.Millisecond)
		var sb strings.Builder
		sb.WriteString(`{"data":[`)
		vec := `[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]`
		for i := range req.Input {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"index":` + strconv.Itoa(i) + `,"embedding":` + vec + `}`)
		}
		sb.WriteString(`],"usage":{"prompt_tokens":1,"total_tokens":1}}`)
		_, _ = w.Write([]byte(sb.String()))
	}))
	defer srv.Close()
	for _, cfg := range []string{
		"batch_size: 32, max_wait: 5ms, concurrency: 8",
		"batch_size: 32, max_wait: 10ms, concurrency: 4",
		"batch_size: 1, concurrency: 32",
	} {
		b.Run(strings.ReplaceAll(strings.ReplaceAll(cfg, ": ", "="), ", ", ","), func(b *testing.B) {
			for range b.N {
				before := requests.Load()
				runLatency(b, srv.URL, cfg)
				b.ReportMetric(float64(requests.Load()-before)/5, "requests/s")
			}
		})
	}
}

func runLatency(b *testing.B, url, cfg string) {
	const rate, dur = 1000, 5 * time.Second
	lh := &latencyHost{h: hdrhistogram.New(1, 60_000_000, 3)}
	specs, err := ParseYAML([]byte(`
- name: lat
  input: {stream: s}
  nodes:
    - {name: vec, op: embed, embed: {provider: openai, url: "` + url + `", model: m, cache: 0, ` + cfg + `}}
  output: {room: out}
`))
	if err != nil {
		b.Fatal(err)
	}
	f := operators.NewFlow(operators.FlowOptions{})
	p, err := Build(specs[0], f, Options{Host: lh}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	n := int(rate * dur / time.Second)
	interval := time.Second / rate
	start := time.Now().Add(10 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		data := []byte(`{"t":` + strconv.FormatInt(at.UnixNano(), 10) + `,"text":"event ` + strconv.Itoa(i) + `"}`)
		_ = f.Post(func() { p.Input().PushOne(NewEvent("s", data, at.UnixNano())) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lh.mu.Lock()
		got := lh.n
		lh.mu.Unlock()
		if got == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	_ = p.Close()
	lh.mu.Lock()
	defer lh.mu.Unlock()
	if lh.n != n {
		b.Fatalf("%d of %d events out", lh.n, n)
	}
	ms := func(q float64) float64 { return float64(lh.h.ValueAtQuantile(q)) / 1000 }
	b.ReportMetric(ms(50), "p50-ms")
	b.ReportMetric(ms(99), "p99-ms")
	b.ReportMetric(float64(lh.h.Max())/1000, "max-ms")
}

package aimodel

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// text50 is a ~50-word text.
var text50 = strings.TrimSpace("The streaming engine routes every event through a pipeline of operators: it filters, maps and " +
	"aggregates them over windows, embeds their text into vectors, compares those vectors with recent " +
	"ones to find near duplicates, and stores them in a vector database, while clients watch the results " +
	"arrive in their rooms.")

// BenchmarkHashingEmbed50Words: offline embeddings of a ~50-word text
// (384 dimensions), one per op.
func BenchmarkHashingEmbed50Words(b *testing.B) {
	if n := len(strings.Fields(text50)); n != 50 {
		b.Fatalf("%d words", n)
	}
	h := HashingEmbedder{Dimensions: 384}
	v := make([]float32, 384)
	b.ReportAllocs()
	for b.Loop() {
		v = h.EmbedInto(v, text50)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "embeddings/s")
}

// BenchmarkCosineWindow: one vector against a window of 1,000
// normalised vectors (cosine = dot product), per op.
func BenchmarkCosineWindow(b *testing.B) {
	for _, dims := range []int{384, 1536} {
		b.Run(fmt.Sprintf("dims=%d", dims), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			win := make([][]float32, 1000)
			for i := range win {
				win[i] = make([]float32, dims)
				for j := range win[i] {
					win[i][j] = float32(r.NormFloat64())
				}
				Normalize(win[i])
			}
			q := Normalize(append([]float32(nil), win[0]...))
			var best float32
			b.ReportAllocs()
			for b.Loop() {
				best = -2
				for _, w := range win {
					if s := Dot(q, w); s > best {
						best = s
					}
				}
			}
			if best < 0.99 {
				b.Fatal(best)
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "comparisons/s")
		})
	}
}

// BenchmarkSSEParse: a chat completion stream of 200 chunks, fed in
// 1 KiB reads.
func BenchmarkSSEParse(b *testing.B) {
	var s strings.Builder
	for range 200 {
		s.WriteString(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}` + "\n\n")
	}
	in := []byte(s.String())
	var p SSEParser
	n := 0
	emit := func(SSEEvent) error { n++; return nil }
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset()
		for i := 0; i < len(in); i += 1024 {
			_ = p.Feed(in[i:min(i+1024, len(in))], emit)
		}
	}
}

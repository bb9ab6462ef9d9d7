package ai

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Reference token ids: from OpenAI's tiktoken test suite
// (tests/test_encoding.py: test_simple, test_simple_regex,
// test_basic_encode, test_encode_surrogate_pairs) and the ids tiktoken
// gives for the rest.
var tokenCases = []struct {
	enc, text string
	ids       []int
}{
	{CL100K, "hello world", []int{15339, 1917}},
	{CL100K, "tiktoken is great!", []int{83, 1609, 5963, 374, 2294, 0}},
	{CL100K, "rer", []int{38149}},
	{CL100K, "'rer", []int{2351, 81}},
	{CL100K, "today\n ", []int{31213, 198, 220}},
	{CL100K, "today\n \n", []int{31213, 27907}},
	{CL100K, "today\n  \n", []int{31213, 14211}},
	{CL100K, " \u00850", []int{220, 126, 227, 15}}, // Python " \x850": U+0085
	{CL100K, "👍", []int{9468, 239, 235}},
	{CL100K, "hello world!你好，世界！", []int{15339, 1917, 0, 57668, 53901, 3922, 3574, 244, 98220, 6447}},
	{CL100K, " 日本語とEnglish 12345!\n", []int{76502, 22656, 45918, 252, 19732, 23392, 220, 4513, 1774, 4999}},
	{CL100K, "a\n\n", []int{64, 271}},
	{CL100K, "!hello1234567", []int{0, 15339, 4513, 10961, 22}},
	// special tokens in text are ordinary characters
	{CL100K, "<|endoftext|>", []int{27, 91, 8862, 728, 428, 91, 29}},
	{O200K, "hello world", []int{24912, 2375}},
	{O200K, " 日本語とEnglish 12345!\n", []int{17428, 40909, 5330, 28881, 220, 7633, 2548, 4175}},
	{O200K, "\x1ca", []int{216, 64}},
	{O200K, "a\n\n", []int{64, 279}},
	{O200K, "<|endoftext|>", []int{27, 91, 419, 1440, 919, 91, 29}},
	{O200K, "", nil},
}

func mustTokenizer(t testing.TB, name string) *Tokenizer {
	t.Helper()
	tk, err := GetTokenizer(name)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokenizerReferenceIDs(t *testing.T) {
	for _, c := range tokenCases {
		tk := mustTokenizer(t, c.enc)
		got := tk.Encode(c.text)
		if !slices.Equal(got, c.ids) {
			t.Errorf("%s %q: ids %v, want %v", c.enc, c.text, got, c.ids)
		}
		if n := tk.Count(c.text); n != len(c.ids) {
			t.Errorf("%s %q: count %d, want %d", c.enc, c.text, n, len(c.ids))
		}
		if d := tk.Decode(c.ids); d != c.text {
			t.Errorf("%s: decode %v = %q, want %q", c.enc, c.ids, d, c.text)
		}
		off := tk.Offsets(nil, c.ids)
		if len(off) != len(c.ids)+1 || off[len(off)-1] != len(c.text) {
			t.Errorf("%s %q: offsets %v", c.enc, c.text, off)
		}
	}
}

func TestTokenizerShared(t *testing.T) {
	a, b := mustTokenizer(t, O200K), mustTokenizer(t, O200K)
	if a != b {
		t.Error("two loads of one encoding")
	}
	if a.Name() != O200K {
		t.Error(a.Name())
	}
	if _, err := GetTokenizer("p50k_base"); err == nil {
		t.Error("p50k_base: no error")
	}
	if err := CheckEncoding("nope"); err == nil || !strings.Contains(err.Error(), "cl100k_base") {
		t.Errorf("CheckEncoding: %v", err)
	}
}

func TestTruncate(t *testing.T) {
	tk := mustTokenizer(t, CL100K)
	head, ids, cut, err := tk.Truncate("tiktoken is great!", 3)
	if err != nil || !cut || head != "tiktoken" || !slices.Equal(ids, []int{83, 1609, 5963}) {
		t.Errorf("Truncate 3: %q %v %v %v", head, ids, cut, err)
	}
	head, ids, cut, _ = tk.Truncate("tiktoken is great!", 6)
	if cut || head != "tiktoken is great!" || len(ids) != 6 {
		t.Errorf("Truncate 6: %q %v %v", head, ids, cut)
	}
	if head, ids, cut, _ = tk.Truncate("hello", 0); head != "" || len(ids) != 0 || !cut {
		t.Errorf("Truncate 0: %q %v %v", head, ids, cut)
	}
	// " 👍" is two tokens that split its emoji's four bytes: no cut inside it
	if ids = tk.Encode("ok 👍"); !slices.Equal(ids, []int{564, 62904, 235}) {
		t.Fatalf("ok 👍: %v", ids)
	}
	for max := 1; max <= 2; max++ {
		head, ids, cut, _ = tk.Truncate("ok 👍", max)
		if !cut || head != "ok" || !slices.Equal(ids, []int{564}) {
			t.Errorf("Truncate %d in an emoji: %q %v %v", max, head, ids, cut)
		}
	}
	head, _, cut, _ = tk.Truncate("ok 👍", 3)
	if cut || head != "ok 👍" {
		t.Errorf("Truncate 4: %q %v", head, cut)
	}
}

// checkRoundTrip is what FuzzTokenizerRoundTrip asserts for one text.
func checkRoundTrip(t *testing.T, tk *Tokenizer, s string) {
	ids := tk.Encode(s)
	if got := tk.Decode(ids); got != s {
		t.Fatalf("%s: decode(encode(%q)) = %q", tk.Name(), s, got)
	}
	off := tk.Offsets(nil, ids)
	if off[len(off)-1] != len(s) {
		t.Fatalf("%s %q: offsets end at %d", tk.Name(), s, off[len(off)-1])
	}
	for i := range ids {
		if tk.Decode(ids[i:i+1]) != s[off[i]:off[i+1]] {
			t.Fatalf("%s %q: token %d is not bytes %d..%d", tk.Name(), s, i, off[i], off[i+1])
		}
	}
	for _, max := range []int{0, 1, len(ids) / 2, len(ids) - 1} {
		if max < 0 {
			continue
		}
		head, hids, _, err := tk.Truncate(s, max)
		if err != nil || len(hids) > max && max < len(ids) || !utf8.ValidString(head) || !strings.HasPrefix(s, head) ||
			tk.Decode(hids) != head {
			t.Fatalf("%s: Truncate(%q, %d) = %q %v %v", tk.Name(), s, max, head, hids, err)
		}
	}
}

// FuzzTokenizerRoundTrip: decode(encode(s)) == s for every valid UTF-8
// s, in both encodings, and the offsets and truncation agree with the
// ids. The seed corpus is in testdata/fuzz/FuzzTokenizerRoundTrip.
func FuzzTokenizerRoundTrip(f *testing.F) {
	for _, c := range tokenCases {
		f.Add(c.text)
	}
	cl, o := mustTokenizer(f, CL100K), mustTokenizer(f, O200K)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		checkRoundTrip(t, cl, s)
		checkRoundTrip(t, o, s)
	})
}

// paragraph is realistic English for the benchmarks (744 bytes).
const paragraph = `Streaming systems for real-time AI have to turn raw events into model inputs within a few milliseconds. ` +
	`A message arrives, it is parsed, enriched with the user's recent history, split into chunks that fit the embedding ` +
	`model's context window, and scored by a classifier before it reaches the language model. Every stage adds latency, ` +
	`so each one must avoid needless copies and allocations; tokenization in particular runs on every prompt and every ` +
	`document, which makes it one of the hottest loops in the pipeline. Counting tokens exactly matters too: a prompt ` +
	`that exceeds the model's limit by a single token is rejected, and a budget computed from characters rather than ` +
	`tokens is wrong by 20% or more for code, numbers and non-English text.`

func BenchmarkTokenize(b *testing.B) {
	for _, name := range Encodings {
		tk := mustTokenizer(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(paragraph)))
			n := 0
			for range b.N {
				n += len(tk.Encode(paragraph))
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// TestTokenizerConcurrent: one shared tokenizer serves goroutines at once
// (run with -race).
func TestTokenizerConcurrent(t *testing.T) {
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 50 {
				c := tokenCases[(g+i)%len(tokenCases)]
				tk, err := GetTokenizer(c.enc)
				if err == nil && !slices.Equal(tk.Encode(c.text), c.ids) {
					err = fmt.Errorf("%s %q: %v", c.enc, c.text, tk.Encode(c.text))
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

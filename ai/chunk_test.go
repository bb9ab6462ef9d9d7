package ai

import (
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestChunkRunes(t *testing.T) {
	c := &Chunker{Size: 4, Overlap: 1}
	got, err := c.Split(nil, "héllo wörld")
	if err != nil {
		t.Fatal(err)
	}
	text := "héllo wörld"
	var texts []string
	for _, ch := range got {
		texts = append(texts, text[ch.Start:ch.End])
	}
	if strings.Join(texts, "|") != "héll|lo w|wörl|ld" {
		t.Errorf("chunks %q", texts)
	}
	if got[1].Start != 4 || got[1].End != 8 || got[1].Units != 4 { // é is 2 bytes
		t.Errorf("chunk 1: %+v", got[1])
	}
	if got, _ := c.Split(nil, ""); len(got) != 0 {
		t.Errorf("empty text: %v", got)
	}
	if got, _ := c.Split(nil, "abc"); len(got) != 1 || got[0] != (Chunk{0, 3, 3}) {
		t.Errorf("short text: %v", got)
	}
	if got, _ := c.Split(nil, "abcd"); len(got) != 1 {
		t.Errorf("text of exactly size: %v", got)
	}
}

func TestChunkValidate(t *testing.T) {
	for _, c := range []Chunker{{Size: 0}, {Size: 3, Overlap: 3}, {Size: 3, Overlap: -1}} {
		if _, err := c.Split(nil, "x"); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestChunkTokens(t *testing.T) {
	tk := mustTokenizer(t, CL100K)
	c := &Chunker{Size: 3, Overlap: 1, Tokenizer: tk}
	text := "tiktoken is great!" // [t][ik][token][ is][ great][!]
	got, err := c.Split(nil, text)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, ch := range got {
		texts = append(texts, text[ch.Start:ch.End])
	}
	want := []string{"tiktoken", "token is great", " great!"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("chunks %q, want %q", texts, want)
	}
	if _, err := c.Split(nil, "bad \xff"); err != ErrInvalidUTF8 {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// size 1 over an emoji of 3 tokens: one chunk holds the whole emoji
	c = &Chunker{Size: 1, Tokenizer: tk}
	got, _ = c.Split(nil, "👍")
	if len(got) != 1 || got[0] != (Chunk{0, 4, 3}) {
		t.Errorf("emoji: %+v", got)
	}
}

// textGen makes texts of ASCII words, multi-byte letters, emoji,
// combining marks and whitespace.
func textGen(asciiOnly bool) *rapid.Generator[string] {
	pieces := []string{"a", "b", "the", " ", "  ", "\n", ".", "!", "42", "don't", "Hello", "world", "tokens"}
	if !asciiOnly {
		pieces = append(pieces, "é", "日本", "語", "👍", "👨‍👩‍👧", "e\u0301", "ß", "\u00a0", "😀😀")
	}
	return rapid.Custom(func(t *rapid.T) string {
		parts := rapid.SliceOfN(rapid.SampledFrom(pieces), 0, 60).Draw(t, "parts")
		return strings.Join(parts, "")
	})
}

// checkChunks asserts the chunker's invariants for one text.
func checkChunks(t *rapid.T, c *Chunker, text string, exact bool) {
	chunks, err := c.Split(nil, text)
	if err != nil {
		t.Fatal(err)
	}
	if text == "" {
		if len(chunks) != 0 {
			t.Fatalf("empty text gave %d chunks", len(chunks))
		}
		return
	}
	if len(chunks) == 0 || chunks[0].Start != 0 || chunks[len(chunks)-1].End != len(text) {
		t.Fatalf("chunks %+v do not span the %d bytes", chunks, len(text))
	}
	// the offsets reconstruct the text: each chunk starts inside or at the
	// end of the one before and goes further
	rebuilt := text[chunks[0].Start:chunks[0].End]
	for i, ch := range chunks {
		s := text[ch.Start:ch.End]
		if !utf8.ValidString(s) || ch.Units <= 0 {
			t.Fatalf("chunk %d %+v: %q", i, ch, s)
		}
		if i == 0 {
			continue
		}
		prev := chunks[i-1]
		if ch.Start <= prev.Start || ch.Start > prev.End || ch.End <= prev.End {
			t.Fatalf("chunk %d %+v after %+v", i, ch, prev)
		}
		rebuilt += text[prev.End:ch.End]
		// the overlap: the units the two share
		shared := ch.Units - c.unitsOf(text[prev.End:ch.End])
		if exact && shared != c.Overlap {
			t.Fatalf("chunks %d and %d share %d units, want %d (%+v %+v)", i-1, i, shared, c.Overlap, prev, ch)
		}
		if !exact && shared < c.Overlap && ch.Units >= c.Overlap {
			// a boundary only ever moves back, which only widens the overlap
			// (unless one character is longer than the chunk)
			t.Logf("chunks %d and %d share %d units < overlap %d", i-1, i, shared, c.Overlap)
		}
	}
	if rebuilt != text {
		t.Fatalf("rebuilt %q from chunks %+v, want %q", rebuilt, chunks, text)
	}
	for i, ch := range chunks {
		if exact && ch.Units > c.Size {
			t.Fatalf("chunk %d has %d units > size %d", i, ch.Units, c.Size)
		}
		if exact && i < len(chunks)-1 && ch.Units != c.Size {
			t.Fatalf("chunk %d is not full: %d units of %d", i, ch.Units, c.Size)
		}
	}
}

// unitsOf counts s in the chunker's unit (s on unit boundaries).
func (c *Chunker) unitsOf(s string) int {
	if c.Tokenizer != nil {
		return c.Tokenizer.Count(s)
	}
	return utf8.RuneCountInString(s)
}

// TestChunkProperties: chunks span the text, their offsets rebuild it,
// neighbours share exactly Overlap units (runes; tokens when no token
// ends inside a character), and no chunk exceeds Size.
func TestChunkProperties(t *testing.T) {
	tk := mustTokenizer(t, CL100K)
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 12).Draw(t, "size")
		overlap := rapid.IntRange(0, size-1).Draw(t, "overlap")
		c := &Chunker{Size: size, Overlap: overlap}
		checkChunks(t, c, textGen(false).Draw(t, "text"), true)
		c.Tokenizer = tk
		checkChunks(t, c, textGen(true).Draw(t, "ascii"), false)
		checkChunks(t, c, textGen(false).Draw(t, "unicode"), false)
	})
}

func BenchmarkChunk(b *testing.B) {
	text := strings.Repeat(paragraph+"\n\n", 8) // ~6 KB
	for _, mode := range []string{"runes", "tokens"} {
		b.Run(mode, func(b *testing.B) {
			c := &Chunker{Size: 256, Overlap: 32}
			if mode == "tokens" {
				c = &Chunker{Size: 128, Overlap: 16, Tokenizer: mustTokenizer(b, CL100K)}
			}
			var dst []Chunk
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for range b.N {
				dst, _ = c.Split(dst[:0], text)
			}
		})
	}
}

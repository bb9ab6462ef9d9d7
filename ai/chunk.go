package ai

import (
	"fmt"
	"unicode/utf8"
)

// Chunk is one piece of a text that Chunker split.
type Chunk struct {
	// Start and End are byte offsets into the original text: the chunk
	// is text[Start:End]. They always fall on character boundaries.
	Start, End int
	// Units is the chunk's length in the chunker's unit (runes or tokens).
	Units int
}

// Chunker splits texts into chunks of at most Size units (runes, or
// tokens of Tokenizer when it is set) where each chunk repeats the last
// Overlap units of the one before it. A chunk boundary never splits a
// character: in token mode, where a token can end inside a multi-byte
// character, the boundary moves back to the last token that ends on a
// character boundary (so such a chunk can be a token or two shorter, or,
// when one character alone is longer than Size tokens, longer).
//
// A Chunker keeps scratch buffers: one per goroutine.
type Chunker struct {
	Size, Overlap int
	Tokenizer     *Tokenizer // nil: runes

	off []int // unit boundaries (byte offsets), len(units)+1
}

// Validate checks Size and Overlap.
func (c *Chunker) Validate() error {
	if c.Size <= 0 {
		return fmt.Errorf("size must be > 0 (got %d)", c.Size)
	}
	if c.Overlap < 0 || c.Overlap >= c.Size {
		return fmt.Errorf("overlap must be >= 0 and < size (got overlap %d, size %d)", c.Overlap, c.Size)
	}
	return nil
}

// Split appends text's chunks to dst, in order. Empty text has none. In
// token mode text must be valid UTF-8 (ErrInvalidUTF8); in rune mode an
// invalid byte counts as one rune.
func (c *Chunker) Split(dst []Chunk, text string) ([]Chunk, error) {
	if err := c.Validate(); err != nil {
		return dst, err
	}
	if text == "" {
		return dst, nil
	}
	off := c.off[:0]
	if c.Tokenizer != nil {
		if !utf8.ValidString(text) {
			return dst, ErrInvalidUTF8
		}
		off = c.Tokenizer.Offsets(off, c.Tokenizer.Encode(text))
		if off[len(off)-1] != len(text) { // cannot happen for valid UTF-8
			c.off = off
			return dst, fmt.Errorf("ai: token offsets end at %d, text has %d bytes", off[len(off)-1], len(text))
		}
	} else {
		for i := range text {
			off = append(off, i)
		}
		off = append(off, len(text))
	}
	c.off = off
	n := len(off) - 1
	tokens := c.Tokenizer != nil
	// ok: boundary k is a character boundary (every rune boundary is)
	ok := func(k int) bool { return !tokens || k == n || utf8.RuneStart(text[off[k]]) }
	s, prevE := 0, 0
	for {
		// e: the last good boundary in (prevE, s+Size], else the first
		// after prevE (each chunk must reach further than the one before)
		target := min(s+c.Size, n)
		e := target
		for e > prevE && !ok(e) {
			e--
		}
		if e <= prevE {
			e = max(target, prevE) + 1
			for !ok(e) {
				e++
			}
		}
		prevE = e
		dst = append(dst, Chunk{Start: off[s], End: off[e], Units: e - s})
		if e == n {
			return dst, nil
		}
		// next start: the last good boundary in (s, e-Overlap], else the
		// first after s
		next := e - c.Overlap
		for next > s && !ok(next) {
			next--
		}
		if next <= s {
			next = s + 1
			for !ok(next) {
				next++
			}
		}
		s = next
	}
}

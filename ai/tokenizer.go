package ai

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// The encodings Tokenizer supports: OpenAI's BPE vocabularies.
const (
	// CL100K is cl100k_base: GPT-4, GPT-3.5-turbo, text-embedding-3-*.
	CL100K = "cl100k_base"
	// O200K is o200k_base: GPT-4o, GPT-4.1, o-series.
	O200K = "o200k_base"
)

// Encodings lists the supported encoding names.
var Encodings = []string{CL100K, O200K}

func init() {
	// The vocabularies come from the loader's embedded files: nothing is
	// downloaded, ever.
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
}

// ErrInvalidUTF8 is returned for text that is not valid UTF-8 where byte
// offsets into it are asked for (token offsets would not line up).
var ErrInvalidUTF8 = errors.New("ai: text is not valid UTF-8")

// Tokenizer is a byte-level BPE tokenizer compatible with OpenAI's
// tiktoken (github.com/pkoukk/tiktoken-go with its offline loader). One
// Tokenizer per encoding is loaded per process, on first use, and shared:
// it is read-only and safe for concurrent use.
//
// Text is encoded as ordinary text: special tokens such as
// "<|endoftext|>" in the input are encoded like any other characters, so
// untrusted text cannot inject them.
type Tokenizer struct {
	name string
	tk   *tiktoken.Tiktoken
	lens []uint16 // byte length of each token id (0: unused id)
}

type loaded struct {
	once sync.Once
	t    *Tokenizer
	err  error
}

var tokenizers = map[string]*loaded{CL100K: {}, O200K: {}}

// CheckEncoding reports whether name is a supported encoding, without
// loading it.
func CheckEncoding(name string) error {
	if _, ok := tokenizers[name]; !ok {
		return fmt.Errorf("unknown encoding %q (want %s or %s)", name, CL100K, O200K)
	}
	return nil
}

// GetTokenizer returns the shared tokenizer of an encoding (CL100K or
// O200K), loading it on first use (about 0.3 s for o200k_base).
func GetTokenizer(name string) (*Tokenizer, error) {
	l, ok := tokenizers[name]
	if !ok {
		return nil, CheckEncoding(name)
	}
	l.once.Do(func() { l.t, l.err = load(name) })
	return l.t, l.err
}

func load(name string) (*Tokenizer, error) {
	tk, err := tiktoken.GetEncoding(name)
	if err != nil {
		return nil, fmt.Errorf("ai: loading encoding %s: %w", name, err)
	}
	t := &Tokenizer{name: name, tk: tk}
	// The byte length of every ordinary token, for offsets: ids are dense
	// from 0, and EncodeOrdinary never yields the special ones.
	n := 0
	switch name {
	case CL100K:
		n = 100256
	case O200K:
		n = 199998
	}
	t.lens = make([]uint16, n)
	one := make([]int, 1)
	for id := range t.lens {
		one[0] = id
		t.lens[id] = uint16(len(tk.Decode(one)))
	}
	return t, nil
}

// Name returns the encoding's name.
func (t *Tokenizer) Name() string { return t.name }

// Encode returns the token ids of text.
func (t *Tokenizer) Encode(text string) []int {
	if text == "" {
		return nil
	}
	return t.tk.EncodeOrdinary(text)
}

// Count returns the number of tokens of text.
func (t *Tokenizer) Count(text string) int { return len(t.Encode(text)) }

// Decode returns the text of ids (ids it does not know decode to nothing).
func (t *Tokenizer) Decode(ids []int) string { return t.tk.Decode(ids) }

// tokenLen returns the byte length of token id.
func (t *Tokenizer) tokenLen(id int) int {
	if id >= 0 && id < len(t.lens) {
		return int(t.lens[id])
	}
	return 0
}

// Offsets appends to dst the byte offset in the encoded text of each
// token boundary: len(ids)+1 values, from 0 to the text's length.
func (t *Tokenizer) Offsets(dst []int, ids []int) []int {
	off := 0
	dst = append(dst, 0)
	for _, id := range ids {
		off += t.tokenLen(id)
		dst = append(dst, off)
	}
	return dst
}

// Truncate returns the longest prefix of text made of at most max whole
// tokens of its encoding that ends on a character boundary (so it is
// Decode(ids[:k]) for some k <= max, and valid UTF-8), the ids of that
// prefix, and whether anything was cut. max < 0 keeps everything.
func (t *Tokenizer) Truncate(text string, max int) (head string, ids []int, truncated bool, err error) {
	ids = t.Encode(text)
	if max < 0 || len(ids) <= max {
		return text, ids, false, nil
	}
	if !utf8.ValidString(text) {
		return "", nil, false, ErrInvalidUTF8
	}
	off := 0
	cut, k := 0, 0 // the last boundary at a character start
	for i, id := range ids[:max] {
		off += t.tokenLen(id)
		if off == len(text) || utf8.RuneStart(text[off]) {
			cut, k = off, i+1
		}
	}
	return text[:cut], ids[:k], true, nil
}

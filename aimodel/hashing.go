package aimodel

import (
	"unicode"
	"unicode/utf8"
)

// HashingEmbedder makes deterministic embeddings offline, by feature
// hashing: the text is split into words (runs of letters and digits,
// lower-cased); every word (unigram) and every pair of adjacent words
// (bigram) is hashed (64-bit FNV-1a, then a SplitMix64 finaliser); the
// hash picks one of Dimensions coordinates and a sign (+1 or −1, from
// another bit of the hash, so collisions cancel out on average instead of
// piling up), and the vector is L2-normalised. The same text gives the
// same vector on every machine and run; texts sharing words and phrases
// have a high cosine similarity. It is not a language model: synonyms
// are unrelated. A HashingEmbedder is immutable and safe for concurrent
// use.
type HashingEmbedder struct {
	// Dimensions is the vector size (≥ 1).
	Dimensions int
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Embed returns the embedding of text (a new slice).
func (h HashingEmbedder) Embed(text string) []float32 {
	return h.EmbedInto(make([]float32, h.Dimensions), text)
}

// EmbedInto writes the embedding of text into dst (resized to Dimensions,
// zeroed first) and returns it: no allocation when dst has the capacity.
func (h HashingEmbedder) EmbedInto(dst []float32, text string) []float32 {
	d := max(h.Dimensions, 1)
	if cap(dst) < d {
		dst = make([]float32, d)
	}
	dst = dst[:d]
	clear(dst)
	var prev uint64
	havePrev := false
	for i := 0; i < len(text); {
		// skip to the next word
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		if !isWordRune(r) {
			i += n
			continue
		}
		w := uint64(fnvOffset)
		for i < len(text) {
			r, n = rune(text[i]), 1
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(text[i:])
			}
			if !isWordRune(r) {
				break
			}
			if r < utf8.RuneSelf {
				c := byte(r)
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				w = (w ^ uint64(c)) * fnvPrime
			} else {
				var buf [utf8.UTFMax]byte
				k := utf8.EncodeRune(buf[:], unicode.ToLower(r))
				for _, c := range buf[:k] {
					w = (w ^ uint64(c)) * fnvPrime
				}
			}
			i += n
		}
		add(dst, mix64(w), 1)
		if havePrev {
			add(dst, mix64(prev*0x9e3779b97f4a7c15^w), 1)
		}
		prev, havePrev = w, true
	}
	return Normalize(dst)
}

// add adds ±weight at the coordinate hash h picks.
func add(v []float32, h uint64, weight float32) {
	idx := (uint64(uint32(h)) * uint64(len(v))) >> 32
	if h>>63 != 0 {
		weight = -weight
	}
	v[idx] += weight
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

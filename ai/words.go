package ai

import (
	"unicode"
	"unicode/utf8"
)

// Words splits texts into lower-cased words for the classifiers: maximal
// runs of letters, digits and combining marks ("Don't stop!" is "don",
// "t", "stop"). It reuses one buffer: one Words per goroutine.
type Words struct {
	buf []byte
}

// Each calls fn with each word of text, lower-cased. The word is only
// valid during the call (it is the scratch buffer).
func (w *Words) Each(text string, fn func(word []byte)) {
	b := w.buf[:0]
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
				b = append(b, c)
				continue
			case 'A' <= c && c <= 'Z':
				b = append(b, c+'a'-'A')
				continue
			}
		} else {
			r, n := utf8.DecodeRuneInString(text[i:])
			i += n
			if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
				b = utf8.AppendRune(b, unicode.ToLower(r))
				continue
			}
		}
		if len(b) > 0 {
			fn(b)
			b = b[:0]
		}
	}
	if len(b) > 0 {
		fn(b)
	}
	w.buf = b[:0]
}

// Normalize appends text's words to dst as " w1 w2 … wn " (lower-cased,
// one space around each), the form phrase keywords are matched in.
func (w *Words) Normalize(dst []byte, text string) []byte {
	dst = append(dst, ' ')
	w.Each(text, func(word []byte) {
		dst = append(dst, word...)
		dst = append(dst, ' ')
	})
	return dst
}

package protocol

import "unicode/utf8"

// This file holds the JSON scanner shared by the decoder and the transcoder:
// validation of every value (RFC 8259 grammar) without building anything,
// and unescaping of string contents. All functions take the input and an
// index and return the index after what they consumed; none allocates.

// maxDepth bounds the nesting of objects and arrays (the top-level object
// counts as 1) in both encodings. Deeper input is rejected as malformed.
const maxDepth = 64

var (
	errJSONEOF       = &Error{CodeBadJSON, "unexpected end of input"}
	errJSONNotObject = &Error{CodeBadJSON, "top level is not a JSON object"}
	errJSONSyntax    = &Error{CodeBadJSON, "invalid character"}
	errJSONEscape    = &Error{CodeBadJSON, "invalid escape in string"}
	errJSONControl   = &Error{CodeBadJSON, "control character in string"}
	errJSONNumber    = &Error{CodeBadJSON, "invalid number"}
	errJSONDepth     = &Error{CodeBadJSON, "nesting deeper than 64 levels"}
	errJSONTrailing  = &Error{CodeBadJSON, "data after the top-level value"}
)

// strPlain[c] is true for bytes that may appear unescaped inside a JSON
// string and need no attention: everything but '"', '\\' and controls.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// scanString validates the string starting at b[i] == '"' and returns the
// index after its closing quote and whether it contains escapes.
func scanString(b []byte, i int) (end int, escaped bool, err *Error) {
	j := i + 1
	for {
		for j < len(b) && strPlain[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, false, errJSONEOF
		}
		switch b[j] {
		case '"':
			return j + 1, escaped, nil
		case '\\':
			escaped = true
			if j+1 >= len(b) {
				return 0, false, errJSONEOF
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) {
					return 0, false, errJSONEOF
				}
				for k := j + 2; k < j+6; k++ {
					if hexVal(b[k]) < 0 {
						return 0, false, errJSONEscape
					}
				}
				j += 6
			default:
				return 0, false, errJSONEscape
			}
		default: // a control character
			return 0, false, errJSONControl
		}
	}
}

// scanNumber validates the number starting at b[i] ('-' or a digit) and
// returns the index after it and whether it is an integer (no fraction, no
// exponent).
func scanNumber(b []byte, i int) (end int, isInt bool, err *Error) {
	j := i
	if b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return 0, false, errJSONEOF
	}
	switch {
	case b[j] == '0':
		j++
	case b[j] >= '1' && b[j] <= '9':
		for j++; j < len(b) && isDigit(b[j]); j++ {
		}
	default:
		return 0, false, errJSONNumber
	}
	isInt = true
	if j < len(b) && b[j] == '.' {
		isInt = false
		j++
		if j >= len(b) || !isDigit(b[j]) {
			return 0, false, errJSONNumber
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		isInt = false
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) || !isDigit(b[j]) {
			return 0, false, errJSONNumber
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	}
	return j, isInt, nil
}

// parseUintDigits parses a run of decimal digits; ok is false on overflow.
func parseUintDigits(s []byte) (v uint64, ok bool) {
	for _, c := range s {
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// scanLiteral checks that b[i:] starts with lit.
func scanLiteral(b []byte, i int, lit string) (int, *Error) {
	if len(b)-i < len(lit) {
		if string(b[i:]) == lit[:len(b)-i] {
			return 0, errJSONEOF
		}
		return 0, errJSONSyntax
	}
	if string(b[i:i+len(lit)]) != lit {
		return 0, errJSONSyntax
	}
	return i + len(lit), nil
}

// skipValue validates the value starting at b[i] (whitespace already
// skipped) and returns the index after it. depth is the nesting level of the
// enclosing container.
func skipValue(b []byte, i, depth int) (int, *Error) {
	if i >= len(b) {
		return 0, errJSONEOF
	}
	switch c := b[i]; c {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{':
		return skipObject(b, i, depth+1)
	case '[':
		return skipArray(b, i, depth+1)
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	default:
		if c == '-' || isDigit(c) {
			end, _, err := scanNumber(b, i)
			return end, err
		}
		return 0, errJSONSyntax
	}
}

// skipObject validates the object starting at b[i] == '{' whose own nesting
// level is depth.
func skipObject(b []byte, i, depth int) (int, *Error) {
	if depth > maxDepth {
		return 0, errJSONDepth
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return 0, errJSONEOF
		}
		if b[i] != '"' {
			return 0, errJSONSyntax
		}
		end, _, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		if i, err = expectColon(b, end); err != nil {
			return 0, err
		}
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = nextMember(b, i, '}'); err != nil || done {
			return i, err
		}
	}
}

// skipArray validates the array starting at b[i] == '[' whose own nesting
// level is depth.
func skipArray(b []byte, i, depth int) (int, *Error) {
	if depth > maxDepth {
		return 0, errJSONDepth
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err *Error
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = nextMember(b, i, ']'); err != nil || done {
			return i, err
		}
	}
}

// expectColon skips whitespace, a ':' and whitespace after an object key.
func expectColon(b []byte, i int) (int, *Error) {
	i = skipWS(b, i)
	if i >= len(b) {
		return 0, errJSONEOF
	}
	if b[i] != ':' {
		return 0, errJSONSyntax
	}
	return skipWS(b, i+1), nil
}

// nextMember consumes what follows a member or element: ',' (then
// whitespace; done is false) or the closing byte (done is true).
func nextMember(b []byte, i int, closing byte) (next int, done bool, err *Error) {
	i = skipWS(b, i)
	if i >= len(b) {
		return 0, false, errJSONEOF
	}
	switch b[i] {
	case ',':
		return skipWS(b, i+1), false, nil
	case closing:
		return i + 1, true, nil
	}
	return 0, false, errJSONSyntax
}

// unescapeAppend appends the unescaped form of the contents s of a string
// that scanString accepted. Escaped lone surrogates become U+FFFD, as in
// encoding/json. The output is never longer than s.
func unescapeAppend(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			start := i
			for i < len(s) && s[i] != '\\' {
				i++
			}
			dst = append(dst, s[start:i]...)
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if r2 := hex4(s[i+2:]); r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(s []byte) rune {
	return rune(hexVal(s[0])<<12 | hexVal(s[1])<<8 | hexVal(s[2])<<4 | hexVal(s[3]))
}

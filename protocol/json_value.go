package protocol

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// DecodeJSONValue decodes one JSON value the way encoding/json decodes into
// an `any`: objects as map[string]any, arrays as []any, numbers as
// float64, strings, bools and nil. It validates as it goes (the same
// grammar and depth limit as the envelope decoder) and is several times
// faster than json.Unmarshal, which checks the input in a separate pass
// and decodes through reflection. Strings and keys are copied: the result
// does not alias b.
func DecodeJSONValue(b []byte) (any, error) {
	i := skipWS(b, 0)
	v, i, err := decodeValue(b, i, 0)
	if err != nil {
		return nil, err
	}
	if skipWS(b, i) != len(b) {
		return nil, errJSONSyntax
	}
	return v, nil
}

func decodeValue(b []byte, i, depth int) (any, int, *Error) {
	if i >= len(b) {
		return nil, 0, errJSONEOF
	}
	switch c := b[i]; c {
	case '"':
		s, end, err := decodeString(b, i)
		return s, end, err
	case '{':
		return decodeObject(b, i, depth+1)
	case '[':
		return decodeArray(b, i, depth+1)
	case 't':
		end, err := scanLiteral(b, i, "true")
		return true, end, err
	case 'f':
		end, err := scanLiteral(b, i, "false")
		return false, end, err
	case 'n':
		end, err := scanLiteral(b, i, "null")
		return nil, end, err
	default:
		if c != '-' && !isDigit(c) {
			return nil, 0, errJSONSyntax
		}
		end, _, err := scanNumber(b, i)
		if err != nil {
			return nil, 0, err
		}
		num := b[i:end]
		// ParseFloat does not keep the string: no copy needed.
		f, perr := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
		if perr != nil {
			return nil, 0, &Error{Code: CodeBadJSON, Message: "number out of range"}
		}
		return f, end, nil
	}
}

// decodeString decodes the string at b[i] == '"' into a new string.
func decodeString(b []byte, i int) (string, int, *Error) {
	end, escaped, err := scanString(b, i)
	if err != nil {
		return "", 0, err
	}
	raw := b[i+1 : end-1]
	if escaped {
		raw = unescapeAppend(make([]byte, 0, len(raw)), raw)
	}
	if !utf8.Valid(raw) {
		// as encoding/json: each invalid byte becomes U+FFFD
		fixed := make([]byte, 0, len(raw)+8)
		for len(raw) > 0 {
			r, n := utf8.DecodeRune(raw)
			if r == utf8.RuneError && n == 1 {
				fixed = utf8.AppendRune(fixed, utf8.RuneError)
			} else {
				fixed = append(fixed, raw[:n]...)
			}
			raw = raw[n:]
		}
		raw = fixed
	}
	return string(raw), end, nil
}

func decodeObject(b []byte, i, depth int) (any, int, *Error) {
	if depth > maxDepth {
		return nil, 0, errJSONDepth
	}
	m := make(map[string]any)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, i + 1, nil
	}
	for {
		if i >= len(b) {
			return nil, 0, errJSONEOF
		}
		if b[i] != '"' {
			return nil, 0, errJSONSyntax
		}
		k, end, err := decodeString(b, i)
		if err != nil {
			return nil, 0, err
		}
		if i, err = expectColon(b, end); err != nil {
			return nil, 0, err
		}
		var v any
		if v, i, err = decodeValue(b, i, depth); err != nil {
			return nil, 0, err
		}
		m[k] = v
		var done bool
		if i, done, err = nextMember(b, i, '}'); err != nil {
			return nil, 0, err
		}
		if done {
			return m, i, nil
		}
	}
}

func decodeArray(b []byte, i, depth int) (any, int, *Error) {
	if depth > maxDepth {
		return nil, 0, errJSONDepth
	}
	a := make([]any, 0, 4)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return a, i + 1, nil
	}
	for {
		v, next, err := decodeValue(b, i, depth)
		if err != nil {
			return nil, 0, err
		}
		a = append(a, v)
		var done bool
		if i, done, err = nextMember(b, next, ']'); err != nil {
			return nil, 0, err
		}
		if done {
			return a, i, nil
		}
	}
}

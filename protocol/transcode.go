package protocol

import (
	"encoding/base64"
	"math"
	"strconv"
)

// Transcoding is the cold path: it runs only when a receiver uses the other
// encoding than the sender, for the raw id and data values. It may allocate
// (a little), and it is written for correctness first.

// JSONToMsgpack appends the msgpack form of jsonValue, which must be exactly
// one JSON value with optional surrounding whitespace (nesting up to 64
// levels). Integers (no fraction, no exponent) that fit int64 or uint64
// become msgpack ints, every other number a float64 (one too large for
// float64 becomes ±Inf); strings are unescaped into str; object members keep
// their order (duplicates included). On error (code "bad_json") dst is
// returned unextended.
func JSONToMsgpack(dst, jsonValue []byte) ([]byte, error) {
	n := len(dst)
	i := skipWS(jsonValue, 0)
	out, i, err := jsonToMsgpack(dst, jsonValue, i, 0)
	if err == nil && skipWS(jsonValue, i) != len(jsonValue) {
		err = errJSONTrailing
	}
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func jsonToMsgpack(dst, b []byte, i, depth int) ([]byte, int, *Error) {
	if i >= len(b) {
		return dst, 0, errJSONEOF
	}
	switch c := b[i]; c {
	case '"':
		end, escaped, err := scanString(b, i)
		if err != nil {
			return dst, 0, err
		}
		s := b[i+1 : end-1]
		if !escaped {
			return AppendMsgpackString(dst, s), end, nil
		}
		p := len(dst)
		dst = unescapeAppend(dst, s)
		return insertStrHeader(dst, p), end, nil
	case '{', '[':
		if depth+1 > maxDepth {
			return dst, 0, errJSONDepth
		}
		return jsonContainerToMsgpack(dst, b, i, depth+1)
	case 't', 'f', 'n':
		lit, v := "null", byte(mpNil)
		if c == 't' {
			lit, v = "true", mpTrue
		} else if c == 'f' {
			lit, v = "false", mpFalse
		}
		end, err := scanLiteral(b, i, lit)
		if err != nil {
			return dst, 0, err
		}
		return append(dst, v), end, nil
	}
	if c := b[i]; c != '-' && !isDigit(c) {
		return dst, 0, errJSONSyntax
	}
	end, isInt, err := scanNumber(b, i)
	if err != nil {
		return dst, 0, err
	}
	return appendJSONNumberMsgpack(dst, b[i:end], isInt), end, nil
}

// appendJSONNumberMsgpack converts a number scanNumber accepted.
func appendJSONNumberMsgpack(dst, num []byte, isInt bool) []byte {
	if isInt {
		neg := num[0] == '-'
		digits := num
		if neg {
			digits = num[1:]
		}
		if v, ok := parseUintDigits(digits); ok {
			if !neg {
				return appendMsgpackUint(dst, v)
			}
			if v <= 1<<63 {
				return appendMsgpackInt(dst, int64(-v)) // -(1<<63) wraps to MinInt64
			}
		}
	}
	f, _ := strconv.ParseFloat(string(num), 64) // grammar already checked; range errors give ±Inf
	return appendMsgpackFloat64(dst, f)
}

func appendMsgpackFloat64(dst []byte, f float64) []byte {
	v := math.Float64bits(f)
	return append(dst, 0xcb, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// insertStrHeader inserts, at p, the str header for the bytes dst[p:].
func insertStrHeader(dst []byte, p int) []byte {
	var h [5]byte
	return insertAt(dst, p, appendMsgpackStrHeader(h[:0], len(dst)-p))
}

// insertContainerHeader inserts, at p, an array (or map) header for n
// elements (or pairs).
func insertContainerHeader(dst []byte, p, n int, isMap bool) []byte {
	var h [5]byte
	hdr := h[:0]
	fix, c16 := byte(0x90), byte(0xdc)
	if isMap {
		fix, c16 = 0x80, 0xde
	}
	switch {
	case n < 16:
		hdr = append(hdr, fix|byte(n))
	case n <= math.MaxUint16:
		hdr = append(hdr, c16, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, c16+1, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return insertAt(dst, p, hdr)
}

func insertAt(dst []byte, p int, ins []byte) []byte {
	n := len(dst)
	dst = append(dst, ins...) // grow by len(ins)
	copy(dst[p+len(ins):], dst[p:n])
	copy(dst[p:], ins)
	return dst
}

// jsonContainerToMsgpack converts the object or array at b[i]; elements are
// appended first and the header, whose size depends on their count, is
// inserted in front afterwards.
func jsonContainerToMsgpack(dst, b []byte, i, depth int) ([]byte, int, *Error) {
	isMap := b[i] == '{'
	closing := byte(']')
	if isMap {
		closing = '}'
	}
	p, n := len(dst), 0
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == closing {
		return insertContainerHeader(dst, p, 0, isMap), i + 1, nil
	}
	for {
		var err *Error
		if isMap {
			if i >= len(b) {
				return dst, 0, errJSONEOF
			}
			if b[i] != '"' {
				return dst, 0, errJSONSyntax
			}
			if dst, i, err = jsonToMsgpack(dst, b, i, depth); err != nil {
				return dst, 0, err
			}
			if i, err = expectColon(b, i); err != nil {
				return dst, 0, err
			}
		}
		if dst, i, err = jsonToMsgpack(dst, b, i, depth); err != nil {
			return dst, 0, err
		}
		n++
		var done bool
		if i, done, err = nextMember(b, i, closing); err != nil {
			return dst, 0, err
		}
		if done {
			return insertContainerHeader(dst, p, n, isMap), i, nil
		}
	}
}

// MsgpackToJSON appends the JSON form of mp, which must be exactly one
// msgpack value (nesting up to 64 levels). str becomes a JSON string (invalid
// UTF-8 replaced by U+FFFD), bin a base64 (standard, padded) string, ext an
// object {"ext":TYPE,"data":BASE64}, NaN and ±Inf null (JSON has no such
// numbers). Map keys that are not str become strings: bin keys their base64
// text, other keys their JSON text ("1", "true", "null", "[1,2]"). On error
// (code "bad_msgpack") dst is returned unextended.
func MsgpackToJSON(dst, mp []byte) ([]byte, error) {
	n := len(dst)
	out, i, err := msgpackToJSON(dst, mp, 0, 0)
	if err == nil && i != len(mp) {
		err = errMPTrailing
	}
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func msgpackToJSON(dst, b []byte, i, depth int) ([]byte, int, *Error) {
	if i >= len(b) {
		return dst, 0, errMPTruncated
	}
	c := b[i]
	switch {
	case c <= 0x7f:
		return strconv.AppendUint(dst, uint64(c), 10), i + 1, nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), i + 1, nil
	case c >= 0x80 && c <= 0x8f:
		return msgpackContainerToJSON(dst, b, i+1, uint64(c&0x0f), true, depth+1)
	case c >= 0x90 && c <= 0x9f:
		return msgpackContainerToJSON(dst, b, i+1, uint64(c&0x0f), false, depth+1)
	case c >= 0xcc && c <= 0xd3:
		n := mpIntSize(c)
		v, err := mpReadN(b, i+1, n)
		if err != nil {
			return dst, 0, err
		}
		if c <= 0xcf {
			return strconv.AppendUint(dst, v, 10), i + 1 + n, nil
		}
		shift := 64 - 8*uint(n) // sign-extend
		return strconv.AppendInt(dst, int64(v<<shift)>>shift, 10), i + 1 + n, nil
	}
	if start, end, ok, err := mpStrSpan(b, i); err != nil || ok {
		if err != nil {
			return dst, 0, err
		}
		if c == 0xc4 || c == 0xc5 || c == 0xc6 { // bin
			return appendBase64String(dst, b[start:end]), end, nil
		}
		return AppendJSONString(dst, b[start:end]), end, nil
	}
	switch c {
	case mpNil:
		return append(dst, "null"...), i + 1, nil
	case mpFalse:
		return append(dst, "false"...), i + 1, nil
	case mpTrue:
		return append(dst, "true"...), i + 1, nil
	case 0xca, 0xcb:
		n := 4 << (c - 0xca)
		v, err := mpReadN(b, i+1, n)
		if err != nil {
			return dst, 0, err
		}
		if c == 0xca {
			return appendJSONFloat(dst, float64(math.Float32frombits(uint32(v))), 32), i + 1 + n, nil
		}
		return appendJSONFloat(dst, math.Float64frombits(v), 64), i + 1 + n, nil
	case 0xdc, 0xdd, 0xde, 0xdf:
		isMap := c >= 0xde
		lb := 2 << ((c - 0xdc) & 1)
		n, err := mpReadN(b, i+1, lb)
		if err != nil {
			return dst, 0, err
		}
		return msgpackContainerToJSON(dst, b, i+1+lb, n, isMap, depth+1)
	}
	// ext: fixext 1..16 (0xd4..0xd8) or ext8/16/32 (0xc7..0xc9).
	end, err := mpSkip(b, i, depth)
	if err != nil {
		return dst, 0, err
	}
	var typeAt int
	switch {
	case c >= 0xd4 && c <= 0xd8:
		typeAt = i + 1
	default:
		typeAt = i + 1 + 1<<(c-0xc7)
	}
	dst = append(dst, `{"ext":`...)
	dst = strconv.AppendInt(dst, int64(int8(b[typeAt])), 10)
	dst = append(dst, `,"data":`...)
	dst = appendBase64String(dst, b[typeAt+1:end])
	return append(dst, '}'), end, nil
}

func appendBase64String(dst, v []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, '"')
}

// appendJSONFloat formats f as encoding/json does (shortest representation,
// exponent form below 1e-6 and from 1e21 on); NaN and ±Inf become null.
func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' { // e-09 → e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// msgpackContainerToJSON converts n elements (or n pairs when isMap)
// starting at b[i]; depth is the container's own nesting level.
func msgpackContainerToJSON(dst, b []byte, i int, n uint64, isMap bool, depth int) ([]byte, int, *Error) {
	if depth > maxDepth {
		return dst, 0, errMPDepth
	}
	per := uint64(1)
	open, closing := byte('['), byte(']')
	if isMap {
		per, open, closing = 2, '{', '}'
	}
	if n > uint64(len(b)-i)/per { // every value takes at least one byte
		return dst, 0, errMPTruncated
	}
	dst = append(dst, open)
	var err *Error
	for k := uint64(0); k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		if isMap {
			if dst, i, err = msgpackKeyToJSON(dst, b, i, depth); err != nil {
				return dst, 0, err
			}
			dst = append(dst, ':')
		}
		if dst, i, err = msgpackToJSON(dst, b, i, depth); err != nil {
			return dst, 0, err
		}
	}
	return append(dst, closing), i, nil
}

// msgpackKeyToJSON converts a map key: str and bin as for values (a JSON
// string), anything else as its JSON text quoted as a string.
func msgpackKeyToJSON(dst, b []byte, i, depth int) ([]byte, int, *Error) {
	p := len(dst)
	dst, i, err := msgpackToJSON(dst, b, i, depth)
	if err != nil {
		return dst, 0, err
	}
	if dst[p] == '"' {
		return dst, i, nil
	}
	text := append([]byte(nil), dst[p:]...)
	return AppendJSONString(dst[:p], text), i, nil
}

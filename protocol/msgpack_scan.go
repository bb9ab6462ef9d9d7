package protocol

// This file holds the msgpack scanner shared by the decoder and the
// transcoder: header reading and validation of whole values without building
// anything. Lengths stay uint64 until checked against the input, so hostile
// 32-bit lengths cannot overflow an int. None of these functions allocates.

var (
	errMPTruncated = &Error{CodeBadMsgpack, "truncated input"}
	errMPNotMap    = &Error{CodeBadMsgpack, "top level is not a msgpack map"}
	errMPInvalid   = &Error{CodeBadMsgpack, "invalid format byte 0xc1"}
	errMPDepth     = &Error{CodeBadMsgpack, "nesting deeper than 64 levels"}
	errMPTrailing  = &Error{CodeBadMsgpack, "data after the top-level value"}
)

// mpReadN reads an n-byte (n <= 8) big-endian unsigned integer at b[i:].
func mpReadN(b []byte, i, n int) (uint64, *Error) {
	if len(b)-i < n {
		return 0, errMPTruncated
	}
	var v uint64
	for _, c := range b[i : i+n] {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// mpSpan returns start+n if that many bytes remain from start.
func mpSpan(b []byte, start int, n uint64) (int, *Error) {
	if n > uint64(len(b)-start) {
		return 0, errMPTruncated
	}
	return start + int(n), nil
}

// mpMapHeader reads a map header at b[i]: the number of pairs and the index
// of the first key.
func mpMapHeader(b []byte, i int) (n uint64, next int, err *Error) {
	if i >= len(b) {
		return 0, 0, errMPTruncated
	}
	switch c := b[i]; {
	case c >= 0x80 && c <= 0x8f:
		return uint64(c & 0x0f), i + 1, nil
	case c == 0xde:
		n, err = mpReadN(b, i+1, 2)
		return n, i + 3, err
	case c == 0xdf:
		n, err = mpReadN(b, i+1, 4)
		return n, i + 5, err
	}
	return 0, 0, errMPNotMap
}

// mpStrSpan reports whether b[i] starts a str or bin value and, if so, the
// span of its payload.
func mpStrSpan(b []byte, i int) (start, end int, ok bool, err *Error) {
	if i >= len(b) {
		return 0, 0, false, errMPTruncated
	}
	c := b[i]
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, start = uint64(c&0x1f), i+1
	case c == 0xd9 || c == 0xc4:
		n, err = mpReadN(b, i+1, 1)
		start = i + 2
	case c == 0xda || c == 0xc5:
		n, err = mpReadN(b, i+1, 2)
		start = i + 3
	case c == 0xdb || c == 0xc6:
		n, err = mpReadN(b, i+1, 4)
		start = i + 5
	default:
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	if end, err = mpSpan(b, start, n); err != nil {
		return 0, 0, false, err
	}
	return start, end, true, nil
}

// mpIntSize gives the payload size of the uint8..uint64 (0xcc..0xcf) and
// int8..int64 (0xd0..0xd3) formats.
func mpIntSize(c byte) int { return 1 << ((c - 0xcc) & 3) }

// mpUint reads a non-negative integer at b[i]. ok is false (and err nil)
// when the value is of another kind or negative; the caller then skips it.
func mpUint(b []byte, i int) (v uint64, end int, ok bool, err *Error) {
	if i >= len(b) {
		return 0, 0, false, errMPTruncated
	}
	c := b[i]
	switch {
	case c <= 0x7f:
		return uint64(c), i + 1, true, nil
	case c >= 0xcc && c <= 0xd3:
		n := mpIntSize(c)
		if v, err = mpReadN(b, i+1, n); err != nil {
			return 0, 0, false, err
		}
		if c >= 0xd0 && b[i+1]&0x80 != 0 { // signed and negative
			return 0, 0, false, nil
		}
		return v, i + 1 + n, true, nil
	}
	return 0, 0, false, nil
}

// mpSkip validates the value at b[i] and returns the index after it. depth
// is the nesting level of the enclosing container.
func mpSkip(b []byte, i, depth int) (int, *Error) {
	if i >= len(b) {
		return 0, errMPTruncated
	}
	c := b[i]
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return i + 1, nil
	case c <= 0x8f:
		return mpSkipElems(b, i+1, 2*uint64(c&0x0f), depth+1)
	case c <= 0x9f:
		return mpSkipElems(b, i+1, uint64(c&0x0f), depth+1)
	case c <= 0xbf:
		return mpSpan(b, i+1, uint64(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return i + 1, nil
	case 0xc4, 0xd9: // bin8, str8
		return mpSkipSized(b, i, 1, 0)
	case 0xc5, 0xda:
		return mpSkipSized(b, i, 2, 0)
	case 0xc6, 0xdb:
		return mpSkipSized(b, i, 4, 0)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type byte, data
		return mpSkipSized(b, i, 1<<(c-0xc7), 1)
	case 0xca: // float32
		return mpSpan(b, i+1, 4)
	case 0xcb: // float64
		return mpSpan(b, i+1, 8)
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		return mpSpan(b, i+1, uint64(mpIntSize(c)))
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16: type byte, data
		return mpSpan(b, i+1, 1+uint64(1)<<(c-0xd4))
	case 0xdc, 0xdd: // array16/32
		n, err := mpReadN(b, i+1, 2<<(c-0xdc))
		if err != nil {
			return 0, err
		}
		return mpSkipElems(b, i+1+2<<(c-0xdc), n, depth+1)
	case 0xde, 0xdf: // map16/32
		n, err := mpReadN(b, i+1, 2<<(c-0xde))
		if err != nil {
			return 0, err
		}
		return mpSkipElems(b, i+1+2<<(c-0xde), 2*n, depth+1)
	}
	return 0, errMPInvalid // 0xc1, never used
}

// mpSkipSized skips a str/bin/ext value at b[i] whose length takes lenBytes
// bytes and whose payload has extra bytes before the data (ext's type).
func mpSkipSized(b []byte, i, lenBytes int, extra uint64) (int, *Error) {
	n, err := mpReadN(b, i+1, lenBytes)
	if err != nil {
		return 0, err
	}
	return mpSpan(b, i+1+lenBytes, n+extra)
}

// mpSkipElems skips n consecutive values of a container at nesting depth.
func mpSkipElems(b []byte, i int, n uint64, depth int) (int, *Error) {
	if depth > maxDepth {
		return 0, errMPDepth
	}
	if n > uint64(len(b)-i) { // every value takes at least one byte
		return 0, errMPTruncated
	}
	var err *Error
	for ; n > 0; n-- {
		if i, err = mpSkip(b, i, depth); err != nil {
			return 0, err
		}
	}
	return i, nil
}

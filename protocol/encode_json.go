package protocol

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// This file builds server → client payloads as JSON text. Every function
// appends to dst and returns the extended slice; none allocates when dst has
// room. Raw id and data values are spliced in unchanged: they must already be
// valid JSON text (as DecodeJSON or MsgpackToJSON produce them).

// jsonPlain[c] is true for the ASCII bytes AppendJSONString copies
// unchanged (false for controls, '"', '\\' and every byte >= 0x80).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. The output is byte for
// byte what encoding/json produces with HTML escaping off: '"' and '\\' are
// backslash-escaped, \b \f \n \r \t use their short forms, other control
// characters and U+2028/U+2029 become \u00XX / \u202X, and each byte of
// invalid UTF-8 becomes \ufffd.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; ; {
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// stringBytes views s as a byte slice without copying. The result must only
// be read, and only while s is reachable (which the caller guarantees by
// holding s for the duration of the call).
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// appendJSONRaw appends a raw JSON value, or null when v is nil.
func appendJSONRaw(dst, v []byte) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	return append(dst, v...)
}

// appendJSONID appends `,"id":<id>` when id is not nil.
func appendJSONID(dst, id []byte) []byte {
	if id == nil {
		return dst
	}
	dst = append(dst, `,"id":`...)
	return append(dst, id...)
}

// AppendWelcomeJSON appends
// {"type":"welcome","session":"<session in decimal>","heartbeat_ms":T}.
func AppendWelcomeJSON(dst []byte, session uint64, heartbeatMS int64) []byte {
	dst = append(dst, `{"type":"welcome","session":"`...)
	dst = strconv.AppendUint(dst, session, 10)
	dst = append(dst, `","heartbeat_ms":`...)
	dst = strconv.AppendInt(dst, heartbeatMS, 10)
	return append(dst, '}')
}

// AppendJoinedJSON appends {"type":"joined","id":ID,"room":R,"seq":N} with
// "id" only when id is not nil and ,"recovered":B added when recoveredSet.
func AppendJoinedJSON(dst []byte, id, room []byte, seq uint64, recoveredSet, recovered bool) []byte {
	dst = append(dst, `{"type":"joined"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"room":`...)
	dst = AppendJSONString(dst, room)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	if recoveredSet {
		dst = append(dst, `,"recovered":`...)
		dst = strconv.AppendBool(dst, recovered)
	}
	return append(dst, '}')
}

// AppendLeftJSON appends {"type":"left","id":ID,"room":R} ("id" only when
// id is not nil).
func AppendLeftJSON(dst, id, room []byte) []byte {
	dst = append(dst, `{"type":"left"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"room":`...)
	dst = AppendJSONString(dst, room)
	return append(dst, '}')
}

// AppendMessageJSON appends {"type":"message","room":R,"seq":N,"data":D}
// with data spliced in raw ("data":null when data is nil).
func AppendMessageJSON(dst []byte, room []byte, seq uint64, data []byte) []byte {
	dst = append(dst, `{"type":"message","room":`...)
	dst = AppendJSONString(dst, room)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"data":`...)
	dst = appendJSONRaw(dst, data)
	return append(dst, '}')
}

// AppendAckJSON appends {"type":"ack","id":ID,"room":R,"seq":N} ("id" only
// when id is not nil).
func AppendAckJSON(dst, id, room []byte, seq uint64) []byte {
	dst = append(dst, `{"type":"ack"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"room":`...)
	dst = AppendJSONString(dst, room)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendPongJSON appends {"type":"pong","id":ID} ("id" only when id is not
// nil).
func AppendPongJSON(dst, id []byte) []byte {
	dst = append(dst, `{"type":"pong"`...)
	dst = appendJSONID(dst, id)
	return append(dst, '}')
}

// AppendErrorJSON appends {"type":"error","id":ID,"code":C,"message":M}
// ("id" only when id is not nil).
func AppendErrorJSON(dst []byte, id []byte, code, message string) []byte {
	return appendErrorJSON(dst, id, code, nil, false, message)
}

// appendErrorJSON is AppendErrorJSON, with a "room" field when withRoom.
func appendErrorJSON(dst []byte, id []byte, code string, room []byte, withRoom bool, message string) []byte {
	dst = append(dst, `{"type":"error"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"code":`...)
	dst = AppendJSONString(dst, stringBytes(code))
	if withRoom {
		dst = append(dst, `,"room":`...)
		dst = AppendJSONString(dst, room)
	}
	dst = append(dst, `,"message":`...)
	dst = AppendJSONString(dst, stringBytes(message))
	return append(dst, '}')
}

// AppendResultJSON appends {"type":"result","id":ID,"stream":S,"data":D}
// ("id" only when id is not nil; "data":null when data is nil).
func AppendResultJSON(dst []byte, id, stream, data []byte) []byte {
	dst = append(dst, `{"type":"result"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"stream":`...)
	dst = AppendJSONString(dst, stream)
	dst = append(dst, `,"data":`...)
	dst = appendJSONRaw(dst, data)
	return append(dst, '}')
}

// AppendWelcomeAuthJSON is AppendWelcomeJSON for a connection that must
// authenticate before anything else: ,"auth":"required" is added.
func AppendWelcomeAuthJSON(dst []byte, session uint64, heartbeatMS int64) []byte {
	dst = AppendWelcomeJSON(dst, session, heartbeatMS)
	dst = dst[:len(dst)-1]
	return append(dst, `,"auth":"required"}`...)
}

// AppendAuthenticatedJSON appends
// {"type":"authenticated","id":ID,"sub":S,"exp":N} ("id" only when id is
// not nil; "exp", Unix seconds, only when exp > 0; ,"admin":true when
// admin), the answer to an accepted auth message.
func AppendAuthenticatedJSON(dst, id, sub []byte, exp int64, admin bool) []byte {
	dst = append(dst, `{"type":"authenticated"`...)
	dst = appendJSONID(dst, id)
	dst = append(dst, `,"sub":`...)
	dst = AppendJSONString(dst, sub)
	if exp > 0 {
		dst = append(dst, `,"exp":`...)
		dst = strconv.AppendInt(dst, exp, 10)
	}
	if admin {
		dst = append(dst, `,"admin":true`...)
	}
	return append(dst, '}')
}

// AppendRoomErrorJSON appends
// {"type":"error","id":ID,"code":C,"room":R,"message":M} ("id" only when id
// is not nil): an error about one room (forbidden).
func AppendRoomErrorJSON(dst []byte, id []byte, code string, room []byte, message string) []byte {
	return appendErrorJSON(dst, id, code, room, true, message)
}

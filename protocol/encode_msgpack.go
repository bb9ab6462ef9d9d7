package protocol

import (
	"math"
	"strconv"
)

// This file builds server → client payloads as msgpack maps with the same
// keys, in the same order, as their JSON twins. Every function appends to dst
// and returns the extended slice; none allocates when dst has room. Raw id
// and data values are spliced in unchanged: they must already be exactly one
// msgpack value (as DecodeMsgpack or JSONToMsgpack produce them). Integers
// use the smallest msgpack format that holds them.

// Keys and constant values as fixstr (0xa0 | length, then the bytes).
const (
	mpKeyType      = "\xa4type"
	mpKeyID        = "\xa2id"
	mpKeyRoom      = "\xa4room"
	mpKeySeq       = "\xa3seq"
	mpKeyData      = "\xa4data"
	mpKeyStream    = "\xa6stream"
	mpKeyCode      = "\xa4code"
	mpKeyMessage   = "\xa7message"
	mpKeySession   = "\xa7session"
	mpKeyHeartbeat = "\xacheartbeat_ms"
	mpKeyRecovered = "\xa9recovered"
	mpKeyAuth      = "\xa4auth"
	mpKeySub       = "\xa3sub"
	mpKeyExp       = "\xa3exp"
	mpKeyAdmin     = "\xa5admin"

	mpValWelcome = "\xa7welcome"
	mpValJoined  = "\xa6joined"
	mpValLeft    = "\xa4left"
	mpValMessage = "\xa7message"
	mpValAck     = "\xa3ack"
	mpValPong    = "\xa4pong"
	mpValError   = "\xa5error"
	mpValResult  = "\xa6result"
	mpValAuthOK  = "\xadauthenticated"
	mpValReq     = "\xa8required"

	mpNil   = 0xc0
	mpFalse = 0xc2
	mpTrue  = 0xc3
)

// appendMsgpackStrHeader appends the header of a str of n bytes.
func appendMsgpackStrHeader(dst []byte, n int) []byte {
	switch {
	case n < 32:
		return append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return append(dst, 0xda, byte(n>>8), byte(n))
	}
	return append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendMsgpackString appends s as a msgpack str (bytes copied as they are).
func AppendMsgpackString(dst []byte, s []byte) []byte {
	return append(appendMsgpackStrHeader(dst, len(s)), s...)
}

// appendMsgpackUint appends v in the smallest unsigned format.
func appendMsgpackUint(dst []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(dst, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(dst, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(dst, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendMsgpackInt appends v in the smallest format (unsigned when v >= 0).
func appendMsgpackInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendMsgpackUint(dst, uint64(v))
	case v >= -32:
		return append(dst, byte(v)) // negative fixint
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(dst, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(dst, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(dst, 0xd3, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendMsgpackBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, mpTrue)
	}
	return append(dst, mpFalse)
}

// appendMsgpackRaw appends a raw msgpack value, or nil when v is nil.
func appendMsgpackRaw(dst, v []byte) []byte {
	if v == nil {
		return append(dst, mpNil)
	}
	return append(dst, v...)
}

// appendMsgpackHead appends a fixmap header for n pairs (plus one when id is
// not nil), the "type" pair, and the "id" pair when id is not nil.
func appendMsgpackHead(dst []byte, n int, typ string, id []byte) []byte {
	if id != nil {
		n++
	}
	dst = append(dst, 0x80|byte(n))
	dst = append(dst, mpKeyType...)
	dst = append(dst, typ...)
	if id != nil {
		dst = append(dst, mpKeyID...)
		dst = append(dst, id...)
	}
	return dst
}

// AppendWelcomeMsgpack is AppendWelcomeJSON in msgpack; session is a str of
// its decimal digits, as in JSON.
func AppendWelcomeMsgpack(dst []byte, session uint64, heartbeatMS int64) []byte {
	dst = appendMsgpackHead(dst, 3, mpValWelcome, nil)
	dst = append(dst, mpKeySession...)
	p := len(dst)
	dst = append(dst, 0xa0) // fixstr header, patched below (<= 20 digits)
	dst = strconv.AppendUint(dst, session, 10)
	dst[p] = 0xa0 | byte(len(dst)-p-1)
	dst = append(dst, mpKeyHeartbeat...)
	return appendMsgpackInt(dst, heartbeatMS)
}

// AppendJoinedMsgpack is AppendJoinedJSON in msgpack.
func AppendJoinedMsgpack(dst []byte, id, room []byte, seq uint64, recoveredSet, recovered bool) []byte {
	n := 3
	if recoveredSet {
		n++
	}
	dst = appendMsgpackHead(dst, n, mpValJoined, id)
	dst = append(dst, mpKeyRoom...)
	dst = AppendMsgpackString(dst, room)
	dst = append(dst, mpKeySeq...)
	dst = appendMsgpackUint(dst, seq)
	if recoveredSet {
		dst = append(dst, mpKeyRecovered...)
		dst = appendMsgpackBool(dst, recovered)
	}
	return dst
}

// AppendLeftMsgpack is AppendLeftJSON in msgpack.
func AppendLeftMsgpack(dst, id, room []byte) []byte {
	dst = appendMsgpackHead(dst, 2, mpValLeft, id)
	dst = append(dst, mpKeyRoom...)
	return AppendMsgpackString(dst, room)
}

// AppendMessageMsgpack is AppendMessageJSON in msgpack (data nil → nil).
func AppendMessageMsgpack(dst []byte, room []byte, seq uint64, data []byte) []byte {
	dst = appendMsgpackHead(dst, 4, mpValMessage, nil)
	dst = append(dst, mpKeyRoom...)
	dst = AppendMsgpackString(dst, room)
	dst = append(dst, mpKeySeq...)
	dst = appendMsgpackUint(dst, seq)
	dst = append(dst, mpKeyData...)
	return appendMsgpackRaw(dst, data)
}

// AppendAckMsgpack is AppendAckJSON in msgpack.
func AppendAckMsgpack(dst, id, room []byte, seq uint64) []byte {
	dst = appendMsgpackHead(dst, 3, mpValAck, id)
	dst = append(dst, mpKeyRoom...)
	dst = AppendMsgpackString(dst, room)
	dst = append(dst, mpKeySeq...)
	return appendMsgpackUint(dst, seq)
}

// AppendPongMsgpack is AppendPongJSON in msgpack.
func AppendPongMsgpack(dst, id []byte) []byte {
	return appendMsgpackHead(dst, 1, mpValPong, id)
}

// AppendErrorMsgpack is AppendErrorJSON in msgpack.
func AppendErrorMsgpack(dst []byte, id []byte, code, message string) []byte {
	return appendErrorMsgpack(dst, id, code, nil, false, message)
}

// appendErrorMsgpack is AppendErrorMsgpack, with a "room" field when
// withRoom.
func appendErrorMsgpack(dst []byte, id []byte, code string, room []byte, withRoom bool, message string) []byte {
	n := 3
	if withRoom {
		n = 4
	}
	dst = appendMsgpackHead(dst, n, mpValError, id)
	dst = append(dst, mpKeyCode...)
	dst = AppendMsgpackString(dst, stringBytes(code))
	if withRoom {
		dst = append(dst, mpKeyRoom...)
		dst = AppendMsgpackString(dst, room)
	}
	dst = append(dst, mpKeyMessage...)
	return AppendMsgpackString(dst, stringBytes(message))
}

// AppendResultMsgpack is AppendResultJSON in msgpack (data nil → nil).
func AppendResultMsgpack(dst []byte, id, stream, data []byte) []byte {
	dst = appendMsgpackHead(dst, 3, mpValResult, id)
	dst = append(dst, mpKeyStream...)
	dst = AppendMsgpackString(dst, stream)
	dst = append(dst, mpKeyData...)
	return appendMsgpackRaw(dst, data)
}

// AppendWelcomeAuthMsgpack is AppendWelcomeAuthJSON in msgpack.
func AppendWelcomeAuthMsgpack(dst []byte, session uint64, heartbeatMS int64) []byte {
	p := len(dst)
	dst = AppendWelcomeMsgpack(dst, session, heartbeatMS)
	dst[p]++ // one more pair in the fixmap
	dst = append(dst, mpKeyAuth...)
	return append(dst, mpValReq...)
}

// AppendAuthenticatedMsgpack is AppendAuthenticatedJSON in msgpack.
func AppendAuthenticatedMsgpack(dst, id, sub []byte, exp int64, admin bool) []byte {
	n := 2
	if exp > 0 {
		n++
	}
	if admin {
		n++
	}
	dst = appendMsgpackHead(dst, n, mpValAuthOK, id)
	dst = append(dst, mpKeySub...)
	dst = AppendMsgpackString(dst, sub)
	if exp > 0 {
		dst = append(dst, mpKeyExp...)
		dst = appendMsgpackInt(dst, exp)
	}
	if admin {
		dst = append(dst, mpKeyAdmin...)
		dst = appendMsgpackBool(dst, true)
	}
	return dst
}

// AppendRoomErrorMsgpack is AppendRoomErrorJSON in msgpack.
func AppendRoomErrorMsgpack(dst []byte, id []byte, code string, room []byte, message string) []byte {
	return appendErrorMsgpack(dst, id, code, room, true, message)
}

package netpoll

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Opcodes of RFC 6455 §5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close status codes of RFC 6455 §7.4.1 that the server sends.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupported     uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent on the wire
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseInternalError   uint16 = 1011
	CloseTryAgainLater   uint16 = 1013
)

// MaxHeaderSize is the largest frame header: 2 + 8 (length) + 4 (mask).
const MaxHeaderSize = 14

// errShort reports that the buffer holds only part of a frame header.
var errShort = errors.New("netpoll: short frame header")

// FrameHeader is a decoded WebSocket frame header.
type FrameHeader struct {
	Fin    bool
	Rsv    byte // RSV1..3 as bits 2..0 (RSV1 = 0b100)
	Op     byte
	Masked bool
	Mask   [4]byte
	Length int64
}

// ProtocolError is a framing fault; Code is the close code to send.
type ProtocolError struct {
	Code   uint16
	Reason string
}

func (e *ProtocolError) Error() string { return "netpoll: " + e.Reason }

var (
	errReservedOpcode   = &ProtocolError{CloseProtocolError, "reserved opcode"}
	errControlFragment  = &ProtocolError{CloseProtocolError, "fragmented control frame"}
	errControlTooLong   = &ProtocolError{CloseProtocolError, "control frame payload over 125 bytes"}
	errLengthMSB        = &ProtocolError{CloseProtocolError, "frame length has its most significant bit set"}
	errNonMinimalLength = &ProtocolError{CloseProtocolError, "frame length not minimally encoded"}
)

// ParseFrameHeader decodes the frame header at the start of b. It returns the
// header and its size in bytes, errShort when b holds only part of a header,
// or a *ProtocolError for a header RFC 6455 forbids (reserved opcodes,
// fragmented or long control frames, a 64-bit length with its top bit set).
// RSV bits and masking are reported, not judged: the caller knows what was
// negotiated and which side it is. ParseFrameHeader never allocates.
func ParseFrameHeader(b []byte) (h FrameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, errShort
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.Op = b0 & 0x0F
	h.Masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return h, 0, errShort
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
		if h.Length < 126 {
			return h, 0, errNonMinimalLength
		}
	case 127:
		if len(b) < 10 {
			return h, 0, errShort
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, errLengthMSB
		}
		h.Length = int64(u)
		n = 10
		if h.Length <= 0xFFFF {
			return h, 0, errNonMinimalLength
		}
	default:
		h.Length = int64(l)
	}
	switch h.Op {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if !h.Fin {
			return h, 0, errControlFragment
		}
		if h.Length > 125 {
			return h, 0, errControlTooLong
		}
	default:
		return h, 0, errReservedOpcode
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, errShort
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// AppendFrameHeader appends an unmasked (server → client) frame header.
func AppendFrameHeader(dst []byte, fin, rsv1 bool, op byte, length int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xFFFF:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// AppendFrame appends a complete unmasked frame carrying payload.
func AppendFrame(dst []byte, op byte, rsv1 bool, payload []byte) []byte {
	dst = AppendFrameHeader(dst, true, rsv1, op, len(payload))
	return append(dst, payload...)
}

// AppendCloseFrame appends a close frame with code and reason (reason is cut
// to fit the 125-byte control payload).
func AppendCloseFrame(dst []byte, code uint16, reason string) []byte {
	if code == 0 || code == CloseNoStatus {
		return AppendFrameHeader(dst, true, false, OpClose, 0)
	}
	if len(reason) > 123 {
		reason = reason[:123]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	dst = AppendFrameHeader(dst, true, false, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// Unmask XORs b in place with mask, starting at mask offset pos, and returns
// the offset for the bytes that follow (for payloads unmasked in pieces).
func Unmask(b []byte, mask [4]byte, pos int) int {
	ws.Cipher(b, mask, pos)
	return (pos + len(b)) & 3
}

// ValidCloseCode reports whether a client may send code in a close frame
// (RFC 6455 §7.4: 1000-1003, 1007-1011, 3000-4999).
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

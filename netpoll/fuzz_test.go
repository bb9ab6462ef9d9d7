package netpoll

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf8"
)

// FuzzFrameDecoder feeds arbitrary bytes after a valid handshake, cut at two
// fuzzed points, and checks the decoder never panics, delivers only valid
// UTF-8 text, and closes only with a code RFC 6455 allows.
func FuzzFrameDecoder(f *testing.F) {
	f.Add(maskedFrame(0x81, []byte(`{"type":"ping"}`)), uint16(3), uint16(9))
	f.Add(append(maskedFrame(0x01, []byte("ab")), maskedFrame(0x80, []byte("cd"))...), uint16(1), uint16(7))
	f.Add(maskedFrame(0x88, []byte{0x03, 0xE8}), uint16(0), uint16(0))
	f.Add([]byte{0x81, 0x7F, 0xFF, 0, 0, 0, 0, 0, 0, 0}, uint16(2), uint16(5))
	f.Add(maskedFrame(0xC1, []byte{0xF2, 0x48, 0xCD}), uint16(4), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		in := append([]byte(testHead), data...)
		cuts := []int{len(testHead) + int(a)%(len(data)+1), len(testHead) + int(b)%(len(data)+1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		rec, fc, _ := feed(t, in, cuts, Options{MaxMessageSize: 1 << 16})
		for _, m := range rec.msgs {
			if m[0] == '1' && !utf8.ValidString(m[2:]) {
				t.Fatalf("invalid UTF-8 text delivered: %q", m)
			}
		}
		out := fc.out.Bytes()
		i := bytes.Index(out, []byte("\r\n\r\n"))
		for out = out[i+4:]; len(out) >= 2; {
			h, n, err := ParseFrameHeader(out)
			if err != nil || len(out) < n+int(h.Length) {
				t.Fatalf("server wrote a bad frame: % x", out)
			}
			p := out[n : n+int(h.Length)]
			if h.Op == OpClose && len(p) >= 2 && !ValidCloseCode(binary.BigEndian.Uint16(p)) {
				t.Fatalf("server closed with code %d", binary.BigEndian.Uint16(p))
			}
			out = out[n+int(h.Length):]
		}
	})
}

// FuzzHandshake feeds arbitrary request heads; the answer must be a 101 or
// an HTTP error, never a panic, and a 101 only for a head with a key.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte(testHead), uint16(10))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n\r\n"), uint16(0))
	f.Add([]byte("GET /ws?x=1 HTTP/1.0\r\n\r\n"), uint16(3))
	f.Add([]byte("\x16\x03\x01garbage\r\n\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, head []byte, cut uint16) {
		c := int(cut) % (len(head) + 1)
		_, fc, conn := feed(t, head, []int{c}, Options{MaxHeaderBytes: 4096})
		out := fc.out.Bytes()
		switch {
		case len(out) == 0:
			if bytes.Contains(head, []byte("\r\n\r\n")) {
				t.Fatalf("complete head got no answer: %q", head)
			}
		case bytes.HasPrefix(out, []byte("HTTP/1.1 101")):
			if !bytes.Contains(bytes.ToLower(head), []byte("sec-websocket-key")) || conn.state != stateOpen {
				t.Fatalf("upgraded without a key: %q", head)
			}
		case bytes.HasPrefix(out, []byte("HTTP/1.1 4")), bytes.HasPrefix(out, []byte("HTTP/1.1 5")):
		default:
			t.Fatalf("unexpected answer %q", out)
		}
	})
}

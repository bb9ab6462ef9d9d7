package netpoll

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// fakeConn is the part of gnet.Conn netpoll uses, over in-memory buffers,
// so the decoder can be fed input cut at any point (split tests, fuzzing).
type fakeConn struct {
	gnet.Conn // nil: any other method panics
	in        []byte
	out       bytes.Buffer
	closed    bool
	ctx       any
}

func (f *fakeConn) InboundBuffered() int { return len(f.in) }
func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(f.in) {
		n = len(f.in)
	}
	return f.in[:n], nil
}
func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(f.in) {
		n = len(f.in)
	}
	f.in = f.in[n:]
	return n, nil
}
func (f *fakeConn) Write(b []byte) (int, error) { return f.out.Write(b) }
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		k, _ := f.out.Write(b)
		n += k
	}
	return n, nil
}
func (f *fakeConn) OutboundBuffered() int     { return 0 }
func (f *fakeConn) Fd() int                   { return -1 }
func (f *fakeConn) Context() any              { return f.ctx }
func (f *fakeConn) SetContext(v any)          { f.ctx = v }
func (f *fakeConn) EventLoop() gnet.EventLoop { return fakeLoop{f: f} }

type fakeLoop struct {
	gnet.EventLoop // nil: any other method panics
	f              *fakeConn
}

func (l fakeLoop) Close(gnet.Conn) error { l.f.closed = true; return nil }

// recorder is a Handler that records messages.
type recorder struct {
	msgs   []string
	opened int
}

func (r *recorder) OnOpen(c *Conn) { r.opened++ }
func (r *recorder) OnMessage(c *Conn, op byte, p []byte) {
	r.msgs = append(r.msgs, fmt.Sprintf("%d:%s", op, p))
}
func (r *recorder) OnClose(c *Conn, err error) {}
func (r *recorder) OnWake(l *Loop)             {}

// feed runs input through a fresh connection in chunks of at most chunk
// bytes and returns what the handler saw and what the server wrote.
func feed(t testing.TB, input []byte, cuts []int, opts Options) (*recorder, *fakeConn, *Conn) {
	rec := &recorder{}
	opts.EnsureDefaults()
	s := &Server{opts: opts, handler: rec}
	l := newLoop(s, nil, 0)
	f := &fakeConn{}
	c := &Conn{gc: f, loop: l, state: stateHandshake, idx: -1}
	f.ctx = c
	prev := 0
	step := func(end int) {
		f.in = append(f.in, input[prev:end]...)
		prev = end
		if c.state == stateClosed || f.closed {
			return
		}
		if s.OnTraffic(f) == gnet.Close { // the server's own read path
			f.closed = true
		}
	}
	for _, cut := range cuts {
		step(cut)
	}
	step(len(input))
	return rec, f, c
}

func maskedFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 0x80|127), uint64(n))
	}
	key := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i&3])
	}
	return out
}

const testHead = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// TestSplitEveryByte cuts a stream (handshake, single frames, a fragmented
// message with a ping inside, a 300-byte frame) at every byte and at every
// pair of bytes, and checks the same messages come out each time.
func TestSplitEveryByte(t *testing.T) {
	var in []byte
	in = append(in, testHead...)
	in = append(in, maskedFrame(0x81, []byte("hello"))...)
	in = append(in, maskedFrame(0x82, []byte{0, 1, 2})...)
	in = append(in, maskedFrame(0x01, []byte("frag-"))...)
	in = append(in, maskedFrame(0x89, []byte("p"))...)
	in = append(in, maskedFrame(0x00, []byte("ment-"))...)
	in = append(in, maskedFrame(0x80, []byte("ed"))...)
	in = append(in, maskedFrame(0x81, bytes.Repeat([]byte("x"), 300))...)
	want := []string{"1:hello", "2:\x00\x01\x02", "1:frag-ment-ed", "1:" + string(bytes.Repeat([]byte("x"), 300))}

	check := func(cuts []int) {
		rec, f, c := feed(t, in, cuts, Options{})
		if c.state != stateOpen || f.closed {
			t.Fatalf("cuts %v: connection state %d closed=%v", cuts, c.state, f.closed)
		}
		if fmt.Sprint(rec.msgs) != fmt.Sprint(want) {
			t.Fatalf("cuts %v: got %q", cuts, rec.msgs)
		}
		if !bytes.HasPrefix(f.out.Bytes(), []byte("HTTP/1.1 101")) || !bytes.Contains(f.out.Bytes(), []byte{0x8A, 0x01, 'p'}) {
			t.Fatalf("cuts %v: server wrote %q (want 101 and a pong)", cuts, f.out.Bytes())
		}
	}
	check(nil)
	for i := 1; i < len(in); i++ {
		check([]int{i})
	}
	for i := len(testHead) - 3; i < len(in); i += 3 {
		for j := i + 1; j < len(in); j += 5 {
			check([]int{i, j})
		}
	}
}

func TestDeflateBombStopsAtLimit(t *testing.T) {
	comp := newCompressor(9)
	body := append([]byte(nil), comp.compress(bytes.Repeat([]byte{0}, 1<<20))...) // 1 MiB of zeros → ~1 KiB
	in := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
	in = append(in, maskedFrame(0xC2, body)...)
	rec, f, _ := feed(t, in, nil, Options{MaxMessageSize: 64 << 10})
	if len(rec.msgs) != 0 {
		t.Fatal("a message inflating past MaxMessageSize was delivered")
	}
	out := f.out.Bytes()
	i := bytes.Index(out, []byte{0x88})
	if i < 0 || binary.BigEndian.Uint16(out[i+2:]) != CloseTooBig {
		t.Fatalf("want close 1009, server wrote %q", out)
	}
}

func TestTruncatedDeflateIsRejected(t *testing.T) {
	comp := newCompressor(1)
	body := append([]byte(nil), comp.compress(bytes.Repeat([]byte("truncate me please "), 20))...)
	head := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
	for _, cut := range []int{1, 3, 4, 6} {
		in := append([]byte(head), maskedFrame(0xC1, body[:len(body)-cut])...)
		rec, f, _ := feed(t, in, nil, Options{})
		if len(rec.msgs) != 0 {
			t.Fatalf("cut %d: a truncated message was delivered (%d bytes)", cut, len(rec.msgs[0]))
		}
		out := f.out.Bytes()
		i := bytes.Index(out, []byte{0x88})
		if i < 0 || binary.BigEndian.Uint16(out[i+2:]) != CloseInvalidPayload {
			t.Fatalf("cut %d: want close 1007, server wrote %q", cut, out)
		}
	}
	// The whole message still inflates.
	rec, _, _ := feed(t, append([]byte(head), maskedFrame(0xC1, body)...), nil, Options{})
	if len(rec.msgs) != 1 {
		t.Fatalf("whole message: got %d messages", len(rec.msgs))
	}
}

// TestProtocolErrorDiscardsTheRest: after a framing fault the rest of the
// stream is dropped, counted once, and the peer's close still ends it.
func TestProtocolErrorDiscardsTheRest(t *testing.T) {
	in := []byte(testHead)
	in = append(in, 0x81, 0x02, 'h', 'i') // unmasked: fault
	for i := 0; i < 5; i++ {
		in = append(in, maskedFrame(0x81, []byte("x"))...)
	}
	cut := len(in)
	in = append(in, maskedFrame(0x88, []byte{0x03, 0xE8})...)
	rec, f, c := feed(t, in, []int{cut}, Options{})
	if len(rec.msgs) != 0 {
		t.Fatalf("frames after the fault were delivered: %q", rec.msgs)
	}
	if n := c.loop.srv.stats.ProtocolErrors.Load(); n != 1 {
		t.Fatalf("protocol errors counted %d times, want 1", n)
	}
	if !f.closed {
		t.Fatal("the peer's close frame did not end the connection")
	}
}

// closingConn closes itself on the first write, as gnet does when a write
// fails (it calls OnClose from inside Write).
type closingConn struct {
	fakeConn
	s *Server
}

func (c *closingConn) Write(b []byte) (int, error) {
	_ = c.s.OnClose(c, nil)
	return 0, nil
}

func TestHandshakeWriteFailureStaysClosed(t *testing.T) {
	rec := &recorder{}
	o := Options{}
	o.EnsureDefaults()
	s := &Server{opts: o, handler: rec}
	l := newLoop(s, nil, 0)
	f := &closingConn{s: s}
	f.in = []byte(testHead)
	c := &Conn{gc: f, loop: l, state: stateHandshake, idx: -1}
	f.ctx = c
	l.addConn(c)
	s.stats.Open.Add(1)
	c.handshake()
	if rec.opened != 0 || c.state != stateClosed {
		t.Fatalf("after a failed 101 write: opened=%d state=%d, want 0 and closed", rec.opened, c.state)
	}
}

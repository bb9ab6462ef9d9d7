package netpoll

import (
	"encoding/binary"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

type connState uint8

const (
	stateHandshake connState = iota // waiting for the HTTP upgrade request
	stateOpen                       // WebSocket frames flow
	stateClosing                    // close frame sent; waiting for the peer's close or EOF
	stateClosed                     // OnClose ran; the Conn must not be used
	stateRejected                   // refused before the upgrade (limit, shutdown)
)

// Conn is one WebSocket connection. Every method is loop-only (call it from a
// Handler callback running on c.Loop()) unless it says otherwise.
type Conn struct {
	gc    gnet.Conn
	loop  *Loop
	state connState
	ip    string   // remote IP, when counted for MaxConnectionsPerIP
	tls   *tlsConn // the TLS terminator feeding it; nil for a plain connection

	// negotiated at upgrade
	subprotocol    string
	deflate        bool
	clientTakeover bool
	window         []byte // last ≤32 KiB inflated (only with client context takeover)
	path           string
	paused         bool   // PauseReading: frames wait in the inbound buffer
	authz          []byte // the upgrade's Authorization header, during Handler.OnOpen only

	// message assembly: fragOp is the opcode of a fragmented message in
	// progress (0 when none); msg holds its payload so far.
	fragOp         byte
	fragCompressed bool
	msg            []byte

	// outbound: frames queued since the last flush, by reference; they must
	// stay valid until the loop flushes (arena or longer-lived memory). out
	// starts on outInline; a connection queuing more borrows a larger slice
	// from the loop and hands it back at the flush, so an idle connection
	// holds no outbound slice and a busy one allocates none.
	out       [][]byte
	outInline [2][]byte
	dirty     bool
	shutWr    bool

	lastActive    int64 // loop clock (unix ns) when the peer last sent anything
	opened        int64
	closeDeadline int64
	pingSent      bool
	idx           int // position in loop.conns

	// Ctx belongs to the Handler; netpoll never reads it.
	Ctx any
}

// Loop returns the event loop that owns c. Safe from any goroutine.
func (c *Conn) Loop() *Loop { return c.loop }

// Subprotocol returns the negotiated subprotocol ("" when none).
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Deflate reports whether permessage-deflate was negotiated.
func (c *Conn) Deflate() bool { return c.deflate }

// Path returns the request URI of the upgrade (path and query).
func (c *Conn) Path() string { return c.path }

// Header returns a header of the upgrade request, valid only during
// Handler.OnOpen (copy what must outlive it). Only Authorization is kept;
// any other name gives nil.
func (c *Conn) Header(name string) []byte {
	if strings.EqualFold(name, "Authorization") {
		return c.authz
	}
	return nil
}

// RemoteAddr returns the peer address (nil once a plain connection
// closed). For a TLS connection it is the client's address, not the
// socketpair the loop reads.
func (c *Conn) RemoteAddr() net.Addr {
	if c.tls != nil {
		return c.tls.remote
	}
	return c.gc.RemoteAddr()
}

// TLS reports whether c came through the TLS listener (wss://).
func (c *Conn) TLS() bool { return c.tls != nil }

// Buffered returns the bytes written to c that the kernel has not taken
// yet (what a slow reader leaves in gnet's outbound buffer); frames queued
// since the last flush are not counted.
func (c *Conn) Buffered() int {
	if c.state != stateOpen {
		return 0
	}
	return c.gc.OutboundBuffered()
}

// PauseReading stops handing c's frames to the Handler: they wait in the
// inbound buffer (the Handler's OnMessage that calls it is the last one)
// until ResumeReading. A peer that keeps sending past the paused read
// limit (2 × MaxMessageSize, at least 1 MiB) is closed with 1008: the
// engine cannot stop the kernel from reading, only stop processing.
// Loop-only.
func (c *Conn) PauseReading() { c.paused = true }

// ResumeReading hands c's waiting frames to the Handler again (on a later
// loop pass). Loop-only.
func (c *Conn) ResumeReading() {
	if !c.paused {
		return
	}
	c.paused = false
	if c.state == stateOpen {
		_ = c.gc.Wake(nil)
	}
}

// Paused reports whether reading is paused. Loop-only.
func (c *Conn) Paused() bool { return c.paused }

// Open reports whether frames may still be written to c.
func (c *Conn) Open() bool { return c.state == stateOpen }

// Write queues a complete, already-encoded frame. frame must stay unchanged
// until the loop's next flush (the end of the current callback batch); use
// a frame from Loop.BeginFrame/EndFrame or Loop.AppendMessageFrame, or
// memory that lives longer.
func (c *Conn) Write(frame []byte) {
	if c.state != stateOpen {
		return
	}
	if len(c.out) == cap(c.out) {
		c.loop.growOut(c)
	}
	c.out = append(c.out, frame)
	if !c.dirty {
		c.dirty = true
		l := c.loop
		if len(l.dirty) == 0 && l.srv.opts.MeasureWrites {
			l.firstQueued = MonoNow()
		}
		l.dirty = append(l.dirty, c)
	}
}

// WriteMessage encodes payload as one text (OpText) or binary (OpBinary)
// message, compressed when c negotiated deflate and payload is long enough,
// and queues it. payload may be reused as soon as WriteMessage returns.
func (c *Conn) WriteMessage(op byte, payload []byte) {
	if c.state != stateOpen {
		return
	}
	c.Write(c.loop.AppendMessageFrame(op, payload, c.deflate))
}

// Close starts the close handshake with code and reason: the close frame is
// queued, nothing more is written, and the connection is closed when the
// peer answers or after a grace period.
func (c *Conn) Close(code uint16, reason string) {
	if c.state != stateOpen {
		return
	}
	c.Write(c.loop.arena.commit(AppendCloseFrame(c.loop.arena.reserve(MaxHeaderSize+125), code, reason)))
	c.state = stateClosing
	c.closeDeadline = c.loop.now + int64(closeGrace)
	c.fragOp, c.msg = 0, nil
}

// readFrames decodes every complete frame in gnet's inbound buffer.
func (c *Conn) readFrames() gnet.Action {
	gc := c.gc
	opts := &c.loop.srv.opts
	for frames := 0; c.state == stateOpen || c.state == stateClosing; frames++ {
		avail := gc.InboundBuffered()
		if frames == opts.ReadQuantum && avail > 0 && c.state == stateOpen && !c.paused {
			// Fairness: the rest after the loop's other connections.
			_ = gc.Wake(nil)
			return gnet.None
		}
		if c.paused && c.state == stateOpen {
			if avail > max(2*opts.MaxMessageSize, 1<<20) {
				return c.fail(&ProtocolError{ClosePolicyViolation, "kept sending while paused (backpressure)"})
			}
			return gnet.None
		}
		if avail < 2 {
			return gnet.None
		}
		hb, _ := gc.Peek(min(avail, MaxHeaderSize))
		h, hl, err := ParseFrameHeader(hb)
		if err == errShort {
			return gnet.None
		}
		if err != nil {
			return c.fail(err.(*ProtocolError))
		}
		if !h.Masked {
			return c.fail(&ProtocolError{CloseProtocolError, "client frame not masked"})
		}
		if h.Rsv&0b011 != 0 {
			return c.fail(&ProtocolError{CloseProtocolError, "RSV2/RSV3 set without a negotiated extension"})
		}
		if h.Rsv&0b100 != 0 && (!c.deflate || h.Op == OpContinuation || h.Op >= OpClose) {
			return c.fail(&ProtocolError{CloseProtocolError, "RSV1 set where permessage-deflate does not allow it"})
		}
		if h.Op < OpClose && int64(len(c.msg))+h.Length > int64(opts.MaxMessageSize) {
			return c.fail(&ProtocolError{CloseTooBig, "message over the size limit"})
		}
		total := hl + int(h.Length)
		if avail < total {
			return gnet.None // wait for the rest of the frame
		}
		buf, _ := gc.Peek(total)
		payload := buf[hl:]
		if len(payload) > 0 {
			Unmask(payload, h.Mask, 0)
		}
		c.lastActive = c.loop.now
		c.pingSent = false
		ctr := &c.loop.counters
		ctr.BytesIn.Store(ctr.BytesIn.Load() + uint64(total))
		action := c.frame(&h, payload)
		_, _ = gc.Discard(total)
		if action != gnet.None {
			return action
		}
	}
	if c.state == stateClosing {
		_, _ = gc.Discard(-1)
	}
	return gnet.None
}

// frame handles one complete, unmasked frame. payload is valid only during
// the call.
func (c *Conn) frame(h *FrameHeader, payload []byte) gnet.Action {
	if c.state == stateClosing && h.Op != OpClose {
		return gnet.None // after our close frame only the peer's close matters
	}
	switch h.Op {
	case OpPing:
		c.Write(c.loop.arena.commit(AppendFrame(c.loop.arena.reserve(2+len(payload)), OpPong, false, payload)))
		return gnet.None
	case OpPong:
		return gnet.None
	case OpClose:
		return c.peerClose(payload)
	case OpText, OpBinary:
		if c.fragOp != 0 {
			return c.fail(&ProtocolError{CloseProtocolError, "new data frame while a fragmented message is open"})
		}
		compressed := h.Rsv&0b100 != 0
		if h.Fin {
			return c.message(h.Op, compressed, payload)
		}
		c.fragOp, c.fragCompressed = h.Op, compressed
		c.msg = append(c.msg[:0], payload...)
		return gnet.None
	default: // OpContinuation
		if c.fragOp == 0 {
			return c.fail(&ProtocolError{CloseProtocolError, "continuation frame without a message to continue"})
		}
		c.msg = append(c.msg, payload...)
		if !h.Fin {
			return gnet.None
		}
		action := c.message(c.fragOp, c.fragCompressed, c.msg)
		c.fragOp = 0
		if cap(c.msg) > 64<<10 {
			c.msg = nil // do not pin a big buffer on an idle connection
		} else {
			c.msg = c.msg[:0]
		}
		return action
	}
}

// message delivers one complete message to the Handler.
func (c *Conn) message(op byte, compressed bool, payload []byte) gnet.Action {
	l := c.loop
	if compressed {
		var dict []byte
		if c.clientTakeover {
			dict = c.window
		}
		if l.dec == nil {
			l.dec = newDecompressor()
		}
		out, err := l.dec.inflate(l.inflated[:0], payload, dict, l.srv.opts.MaxMessageSize)
		if cap(out) <= 4*arenaChunk {
			l.inflated = out[:0]
		}
		if err != nil {
			return c.fail(err.(*ProtocolError))
		}
		payload = out
		if c.clientTakeover {
			c.slideWindow(out)
		}
	}
	if op == OpText && !utf8.Valid(payload) {
		return c.fail(&ProtocolError{CloseInvalidPayload, "text message is not valid UTF-8"})
	}
	l.srv.handler.OnMessage(c, op, payload)
	return gnet.None
}

// slideWindow keeps the last 32 KiB of inflated output for the next message.
func (c *Conn) slideWindow(out []byte) {
	if len(out) >= windowSize {
		c.window = append(c.window[:0], out[len(out)-windowSize:]...)
		return
	}
	if keep := windowSize - len(out); len(c.window) > keep {
		c.window = append(c.window[:0], c.window[len(c.window)-keep:]...)
	}
	c.window = append(c.window, out...)
}

// peerClose answers the peer's close frame and closes.
func (c *Conn) peerClose(payload []byte) gnet.Action {
	if c.state == stateClosing {
		return gnet.Close // our close was answered
	}
	code, reason := CloseNormal, ""
	switch {
	case len(payload) == 1:
		return c.fail(&ProtocolError{CloseProtocolError, "close frame with a 1-byte payload"})
	case len(payload) >= 2:
		code = binary.BigEndian.Uint16(payload)
		if !ValidCloseCode(code) {
			return c.fail(&ProtocolError{CloseProtocolError, "invalid close code"})
		}
		if !utf8.Valid(payload[2:]) {
			return c.fail(&ProtocolError{CloseInvalidPayload, "close reason is not valid UTF-8"})
		}
	}
	c.Write(c.loop.arena.commit(AppendCloseFrame(c.loop.arena.reserve(MaxHeaderSize+125), code, reason)))
	c.state = stateClosing
	c.loop.flush()
	return gnet.Close
}

// fail closes the connection for a WebSocket-level fault. Whatever else the
// peer sent is discarded: after a framing fault nothing in the stream can be
// trusted, and while closing only EOF or the grace period matter.
func (c *Conn) fail(e *ProtocolError) gnet.Action {
	_, _ = c.gc.Discard(-1)
	if c.state != stateOpen {
		return gnet.None
	}
	c.loop.srv.count(&c.loop.srv.stats.ProtocolErrors)
	c.Close(e.Code, e.Reason)
	return gnet.None
}

// flushOut writes the queued frames (writeFrames).
func (c *Conn) flushOut() {
	c.dirty = false
	if len(c.out) == 0 {
		return
	}
	c.loop.writeFrames(c)
	c.loop.returnOut(c)
	if c.state != stateOpen && c.state != stateClosing {
		return // the write failed and gnet closed the connection
	}
	if c.gc.OutboundBuffered() > c.loop.srv.opts.WriteBufferLimit {
		// The peer does not read: drop it rather than buffer without bound.
		c.loop.srv.count(&c.loop.srv.stats.SlowConsumerDrops)
		c.closeNow()
		return
	}
	if c.state == stateClosing && !c.shutWr && c.gc.OutboundBuffered() == 0 {
		// Our close frame is out: half-close so the peer sees EOF after it
		// even if it keeps sending, then wait for its close or EOF.
		c.shutWr = true
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR)
	}
}

// closeNow closes the TCP connection without a close handshake.
func (c *Conn) closeNow() {
	if c.state == stateClosed {
		return
	}
	_ = c.gc.EventLoop().Close(c.gc)
}

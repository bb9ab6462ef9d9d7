package netpoll

import (
	"context"
	"streamd/internal/hist"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Loop is one gnet event loop as netpoll sees it: its connections, the
// frame arena, the connections written during the current batch, and the
// loop's (de)compressor. Fields are loop-only unless marked otherwise.
type Loop struct {
	srv   *Server
	el    gnet.EventLoop // safe from any goroutine (Execute)
	index int            // dense index 0..loops-1, in order of discovery

	now      int64 // unix ns, read once per callback batch
	conns    []*Conn
	dirty    []*Conn
	arena    arena
	upgrader *upgrader
	comp     *compressor
	dec      *decompressor
	inflated []byte
	outPool  [][][]byte // larger outbound lists, lent to connections for one batch
	coalesce []byte     // small frames of one connection, joined for one write

	pinned   bool    // the loop's thread was pinned (Options.Pin)
	prevMask cpuMask // its mask before pinning

	wakePending atomic.Bool // any goroutine: a wake task is queued
	scanPending atomic.Bool // a heartbeat scan is queued
	wakeTask    gnet.RunnableFunc
	scanTask    gnet.RunnableFunc

	counters    LoopCounters
	firstQueued int64 // MeasureWrites: when the batch's first frame was queued (MonoNow)
	mono        int64 // MonoNow at the batch's start

	// Ctx belongs to the Handler (e.g. the engine's per-loop state).
	Ctx any
}

// LoopCounters are one loop's traffic figures: written by the loop only
// (a load and a store, no read-modify-write), read from anywhere.
type LoopCounters struct {
	BytesIn  atomic.Uint64 // WebSocket frame bytes read (headers included)
	BytesOut atomic.Uint64 // bytes handed to the socket
	// Outbound is what the loop's connections held unsent (gnet's
	// outbound buffers) at the last heartbeat scan.
	Outbound atomic.Int64
	// Write is the time from the first frame queued in a batch to the end
	// of the batch's socket writes, per flush (Options.MeasureWrites).
	Write hist.H
}

// monoEpoch is the origin of MonoNow: a process-wide monotonic clock.
var monoEpoch = time.Now()

// MonoNow returns monotonic nanoseconds since the process's epoch. It
// reads only the monotonic clock (about half the cost of time.Now on
// Linux); the engine's latency timestamps use it.
func MonoNow() int64 { return int64(time.Since(monoEpoch)) }

// setNow reads the clock once for the batch: wall time for timeouts and
// the monotonic reading for latency stamps.
func (l *Loop) setNow() {
	t := time.Now()
	l.now = t.UnixNano()
	l.mono = int64(t.Sub(monoEpoch))
}

// Mono returns the monotonic time (MonoNow's clock) of the batch being
// handled: when the loop woke or read. Loop-only.
func (l *Loop) Mono() int64 { return l.mono }

// Counters returns the loop's counters. Safe from any goroutine.
func (l *Loop) Counters() *LoopCounters { return &l.counters }

func newLoop(s *Server, el gnet.EventLoop, index int) *Loop {
	l := &Loop{srv: s, el: el, index: index}
	l.upgrader = newUpgrader(&s.opts)
	l.upgrader.checkOrigin = s.opts.CheckOrigin
	l.wakeTask = func(context.Context) error {
		l.wakePending.Store(false)
		l.setNow()
		s.handler.OnWake(l)
		l.flush()
		return nil
	}
	l.scanTask = func(context.Context) error {
		l.scanPending.Store(false)
		l.setNow()
		l.scan()
		l.flush()
		return nil
	}
	return l
}

// Index returns the loop's dense index. Safe from any goroutine.
func (l *Loop) Index() int { return l.index }

// Now returns the loop clock (unix ns), read once per callback batch.
func (l *Loop) Now() int64 { return l.now }

// Wake asks the loop to call Handler.OnWake soon. Safe from any goroutine;
// calls made while a wake is pending are coalesced into it.
func (l *Loop) Wake() {
	if l.wakePending.CompareAndSwap(false, true) {
		if err := l.el.Execute(context.Background(), l.wakeTask); err != nil {
			l.wakePending.Store(false)
		}
	}
}

// AppendMessageFrame builds a frame for one whole message in the arena,
// compressed when deflate is set and the payload reaches the compression
// threshold. The frame is valid until the loop's next flush.
func (l *Loop) AppendMessageFrame(op byte, payload []byte, deflate bool) []byte {
	if deflate && len(payload) >= l.srv.opts.CompressionThreshold {
		if l.comp == nil {
			l.comp = newCompressor(l.srv.opts.CompressionLevel)
		}
		body := l.comp.compress(payload)
		frame := AppendFrameHeader(l.arena.reserve(MaxHeaderSize+len(body)), true, true, op, len(body))
		frame = append(frame, body...)
		return l.arena.commit(frame)
	}
	frame := AppendFrameHeader(l.arena.reserve(MaxHeaderSize+len(payload)), true, false, op, len(payload))
	return l.arena.commit(append(frame, payload...))
}

// flush writes every connection queued during this batch (writeFrames)
// and then recycles the arena.
func (l *Loop) flush() {
	// Index loop: closing a connection may queue frames on others.
	for i := 0; i < len(l.dirty); i++ {
		l.dirty[i].flushOut()
	}
	if l.firstQueued != 0 {
		l.counters.Write.Record(MonoNow() - l.firstQueued)
		l.firstQueued = 0
	}
	clear(l.dirty)
	if cap(l.dirty) > 4096 {
		l.dirty = nil
	} else {
		l.dirty = l.dirty[:0]
	}
	l.arena.reset()
}

// closeGrace bounds the wait for the peer's answer to our close frame.
const closeGrace = 2 * time.Second

// scan sends heartbeats and closes dead, stuck or lingering connections.
func (l *Loop) scan() {
	o := &l.srv.opts
	now := l.now
	var outbound int64
	for i := 0; i < len(l.conns); i++ {
		c := l.conns[i]
		outbound += int64(c.gc.OutboundBuffered())
		switch c.state {
		case stateHandshake:
			if now-c.opened > int64(o.HandshakeTimeout) {
				l.srv.count(&l.srv.stats.HandshakeTimeouts)
				c.closeNow()
			}
		case stateClosing:
			if now > c.closeDeadline {
				c.closeNow()
			}
		case stateOpen:
			idle := now - c.lastActive
			switch {
			case idle > int64(o.IdleTimeout):
				l.srv.count(&l.srv.stats.IdleTimeouts)
				c.Close(CloseGoingAway, "idle timeout")
			case idle > int64(o.HeartbeatInterval) && !c.pingSent:
				c.pingSent = true
				c.Write(pingFrame)
			}
		}
		if i < len(l.conns) && l.conns[i] != c {
			i-- // c was removed and another took its place
		}
	}
	l.counters.Outbound.Store(outbound)
}

var pingFrame = []byte{0x80 | OpPing, 0}

func (l *Loop) addConn(c *Conn) {
	c.idx = len(l.conns)
	l.conns = append(l.conns, c)
}

func (l *Loop) removeConn(c *Conn) {
	last := len(l.conns) - 1
	if c.idx < 0 || c.idx > last || l.conns[c.idx] != c {
		return
	}
	l.conns[c.idx] = l.conns[last]
	l.conns[c.idx].idx = c.idx
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.idx = -1
}

// BeginFrame starts a frame whose payload the caller appends in place: it
// returns a slice of length MaxHeaderSize (room for the header) with capacity
// for at least n payload bytes after it. Append the payload, then call
// EndFrame. Together they build a frame with no copy of the payload.
func (l *Loop) BeginFrame(n int) []byte {
	return l.arena.reserve(MaxHeaderSize + n)[:MaxHeaderSize]
}

// EndFrame writes the header for b (from BeginFrame, payload appended) right
// before the payload and returns the frame, valid until the loop's next flush.
func (l *Loop) EndFrame(b []byte, op byte) []byte {
	l.arena.commit(b)
	plen := len(b) - MaxHeaderSize
	var hdr [MaxHeaderSize]byte
	h := AppendFrameHeader(hdr[:0], true, false, op, plen)
	start := MaxHeaderSize - len(h)
	copy(b[start:], h)
	return b[start:]
}

// growOut gives c room for more outbound frames: its inline array first,
// then a list lent by the loop (or a new, larger one).
func (l *Loop) growOut(c *Conn) {
	if cap(c.out) == 0 {
		c.out = c.outInline[:0]
		return
	}
	var bigger [][]byte
	if k := len(l.outPool); k > 0 && cap(l.outPool[k-1]) > cap(c.out) {
		bigger = l.outPool[k-1][:0]
		l.outPool = l.outPool[:k-1]
	} else {
		bigger = make([][]byte, 0, max(2*cap(c.out), 16))
	}
	bigger = append(bigger, c.out...)
	l.returnOut(c)
	c.out = bigger
}

// returnOut takes back c's lent list, if it has one, and leaves c with none.
// At most 256 lists are kept.
func (l *Loop) returnOut(c *Conn) {
	out := c.out
	c.out = nil
	if cap(out) == 0 || &out[:1][0] == &c.outInline[0] {
		clear(c.outInline[:])
		return
	}
	clear(out[:cap(out)])
	if len(l.outPool) < 256 {
		l.outPool = append(l.outPool, out[:0])
	}
}

// coalesceMax: frames of one connection are copied into buffers of up to
// this many bytes, each written with one write(2).
const coalesceMax = 64 << 10

// writeFrames writes c's queued frames: one frame as is; several joined
// into buffers of up to coalesceMax bytes (a frame that size or larger on
// its own, as is), one write each. Not writev: x/sys/unix allocates its
// iovec list on every call (30 B/op in EchoLoopback; the time per message
// measured the same either way), and when the socket is full gnet copies
// what is left of a writev into a pooled buffer and a list node per frame
// (a lagging member drained by lag_bytes/2 = 128 KiB of 512 B frames: ~250
// of both per wake), against one per 64 KiB write. Measured in the
// backpressure soak's heap profiles (bench/RESULTS.md, "60-second overload
// soak": the engine's garbage 356 → 91 KiB/s with this, WriteBufferCap and
// the arena's kept chunks).
func (l *Loop) writeFrames(c *Conn) {
	out := c.out
	total := 0
	for _, f := range out {
		total += len(f)
	}
	l.counters.BytesOut.Store(l.counters.BytesOut.Load() + uint64(total))
	if len(out) == 1 {
		_, _ = c.gc.Write(out[0])
		return
	}
	b := l.coalesce[:0]
	for _, f := range out {
		if len(b)+len(f) > coalesceMax && len(b) > 0 {
			_, _ = c.gc.Write(b)
			b = b[:0]
		}
		if c.state != stateOpen && c.state != stateClosing {
			break // a write failed and closed c: nothing more for its fd
		}
		if len(f) >= coalesceMax {
			_, _ = c.gc.Write(f)
			continue
		}
		b = append(b, f...)
	}
	if len(b) > 0 && (c.state == stateOpen || c.state == stateClosing) {
		_, _ = c.gc.Write(b)
	}
	l.coalesce = b[:0]
}

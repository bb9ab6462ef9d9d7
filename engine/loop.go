package engine

import (
	"runtime"
	"sync/atomic"

	"streamd/netpoll"
	"streamd/protocol"
	"streamd/ring"
)

// loopState is the engine's side of one event loop: its sessions' rooms,
// the room-name cache, and the rings to and from the shards. Loop-only.
type loopState struct {
	e     *Engine
	np    *netpoll.Loop
	index int

	rooms   map[string]*room // cache of e.rooms, read without a lock
	dec     protocol.Decoder
	env     protocol.Envelope
	toShard []*ring.SPSC[command] // toShard[s] = shards[s].in[index]
	frames  [4][]byte             // per-delivery frame variants (scratch)
	conv    []byte                // transcoding scratch for data
	gapBuf  []byte                // a gap notice being built (writeGaps)
	idConv  []byte                // transcoding scratch for ids
	writes  int                   // frames queued since the wake began

	counters counters // this loop's totals (received, delivered, errors)
	metrics  loopMetrics
	sentAt   int64 // Metrics full: when the last command was queued (netpoll.MonoNow)
	drainAt  int64 // Metrics full: the clock read of the current drainOuts (0: none yet)
	inDrain  bool  // in drainOuts

	// Sessions with an auth deadline (auth.go): the list, its earliest
	// deadline (Unix ns, 0: none; read by the engine's auth ticker) and
	// whether the ticker asked for a sweep.
	timed        []*session
	nextDeadline atomic.Int64
	sweepDue     atomic.Bool

	// Lagging members (backpressure.go) and their count, read by the
	// engine's ticker to wake this loop.
	lagging  []*session
	lagFree  []*lagState // emptied queues for newLag
	lagCount atomic.Int32
	// Producers told to pause (ratelimit.go), and their count.
	paused      []*session
	pausedCount atomic.Int32
	// Producers whose event waits for a full pipeline queue
	// (backpressure.go), and their count.
	holding   []*session
	heldCount atomic.Int32
	// Producers whose message waits for their rate limit's tokens
	// (rate_limit_overflow: block; ratelimit.go), and their count.
	rateHolding   []*session
	rateHeldCount atomic.Int32
}

// session is one client connection's protocol state. Loop-only, except
// that shards carry the pointer (never its fields) in commands and outs.
type session struct {
	id     uint64
	conn   *netpoll.Conn
	ls     *loopState
	enc    encoding // the encoding the client last used
	closed bool
	joins  []membership
	// gone is closed for other goroutines: set by OnClose, read by the
	// pipeline host (an llm stream stops when its client left).
	gone atomic.Bool

	msgBucket, byteBucket bucket // rate limits (ratelimit.go)
	limitedAt             int64  // last rate_limited answer (loop time)

	// who is the connection's identity (auth.go): anonymous, a verified
	// token, or nil while it must still authenticate.
	who      *identity
	deadline int64 // Unix ns: auth timeout (who nil) or token expiry; 0: none
	timedIdx int32 // 1 + index in ls.timed; 0: not there
	// bp is the connection's own backpressure (?backpressure= on its
	// upgrade URL; nil: its rooms'); lag its queue while it lags
	// (backpressure.go).
	bp  *bpPolicy
	lag *lagState
	// flowPaused: s was sent {"type":"flow","state":"pause"} (ratelimit.go).
	flowPaused bool
	// held is an event waiting for room in its pipelines' queues; s's
	// reading is paused meanwhile (backpressure.go).
	held *heldEvent
	// rateHeld: a message over the rate limit waits in rateBuf (its frame
	// opcode rateOp) for tokens; s's reading is paused meanwhile
	// (rate_limit_overflow: block; ratelimit.go).
	rateHeld bool
	rateOp   byte
	rateT0   int64 // when the held message was read
	rateBuf  []byte
	// pubRoom is the room s was last allowed to publish into
	// (permissions.go): the next publish there needs no check.
	pubRoom *room
}

// membership is a session's relation to one room, as this loop sees it.
//
// counted says whether the commands sent so far leave the session counted
// as a member by the shard (join: yes, leave: no); it decides whether the
// next join or leave changes the shard's count. The view (pos) follows the
// shard's answers instead, applied in the shard's order: outJoined adds the
// session, outLeft removes it. So a leave and a join sent back to back never
// let through a message the shard published between them. pending counts
// requests whose answer has not come back; a membership that is neither
// counted nor pending is forgotten.
type membership struct {
	room    *room
	counted bool
	pending int32
	pos     int32 // index in room.views[loop].members; -1 when not in the view
	// consumer is the user_id the session joined a durable room with: its
	// acks record that user's position (positions.go).
	consumer string
}

// roomView lists one loop's members of a room (loop-owned).
type roomView struct {
	members []*session
}

func (s *session) find(r *room) *membership {
	for i := range s.joins {
		if s.joins[i].room == r {
			return &s.joins[i]
		}
	}
	return nil
}

func (s *session) forget(r *room) {
	for i := range s.joins {
		if s.joins[i].room == r {
			last := len(s.joins) - 1
			s.joins[i] = s.joins[last]
			s.joins[last] = membership{}
			s.joins = s.joins[:last]
			return
		}
	}
}

// addToView puts s in r's view on its loop.
func (ls *loopState) addToView(s *session, m *membership) {
	if m.pos >= 0 {
		return
	}
	v := m.room.views[ls.index]
	if v == nil {
		v = &roomView{}
		m.room.views[ls.index] = v
	}
	m.pos = int32(len(v.members))
	v.members = append(v.members, s)
	ls.metrics.members.Add(1)
}

// removeFromView takes s out of r's view (swap-remove).
func (ls *loopState) removeFromView(s *session, m *membership) {
	if m.pos < 0 {
		return
	}
	v := m.room.views[ls.index]
	ls.metrics.members.Add(-1)
	last := len(v.members) - 1
	moved := v.members[last]
	v.members[m.pos] = moved
	v.members[last] = nil
	v.members = v.members[:last]
	if moved != s {
		if mm := moved.find(m.room); mm != nil {
			mm.pos = m.pos
		}
	}
	m.pos = -1
}

// send hands c to the shard that owns its room.
func (ls *loopState) send(c command) {
	sh := c.room.shard
	if ls.e.full {
		c.t = netpoll.MonoNow()
		ls.sentAt = c.t
	}
	if ls.e.inline {
		// An API caller holding the shard may be waiting for this loop to
		// drain its ring: drain while waiting, never block on the lock.
		for !sh.mu.TryLock() {
			ls.drainFrom(sh, -1)
			runtime.Gosched()
		}
		sh.handle(exec{loop: ls, now: c.t}, &c)
		sh.flushWakes()
		sh.mu.Unlock()
		return
	}
	r := ls.toShard[sh.index]
	for !r.TryPush(c) {
		if ls.e.closing.Load() { // nobody will take it: drop the command
			c.discard()
			return
		}
		ls.drainOuts() // the shard may wait on us: keep our side moving
		ls.e.yield()
	}
	sh.worker.notify()
}

// Per wake, a loop handles at most drainOuts outs or queues at most
// drainWrites frames, then flushes and wakes itself again: a publisher
// faster than the fan-out must not keep the loop from writing.
const (
	drainOutsBudget   = 1024
	drainWritesBudget = 64 << 10
)

// drainOuts handles the outs the shards queued for this loop, within the
// per-wake budget, and reports whether some were left for the next wake.
func (ls *loopState) drainOuts() (more bool) {
	ls.writes = 0
	ls.inDrain, ls.drainAt = true, 0
	more = ls.drainAll()
	ls.inDrain, ls.drainAt = false, 0
	return more
}

// drainAll is drainOuts without the bookkeeping.
func (ls *loopState) drainAll() (more bool) {
	budget := drainOutsBudget
	for _, sh := range ls.e.shards {
		n := ls.drainFrom(sh, budget)
		budget -= n
		if budget <= 0 || ls.writes >= drainWritesBudget {
			return true
		}
	}
	for _, x := range ls.e.execs {
		n := ls.drainRing(x.toLoop[ls.index], budget)
		budget -= n
		if budget <= 0 || ls.writes >= drainWritesBudget {
			return true
		}
	}
	return false
}

// drainFrom handles up to limit outs from sh's ring to this loop (all of
// them when limit < 0) and returns how many it handled.
func (ls *loopState) drainFrom(sh *shard, limit int) int {
	return ls.drainRing(sh.toLoop[ls.index], limit)
}

// drainRing handles up to limit outs from r (all when limit < 0).
func (ls *loopState) drainRing(r *ring.SPSC[out], limit int) int {
	n := 0
	for o := r.Peek(); o != nil && n != limit; o = r.Peek() {
		v := *o
		r.Release()
		ls.handleOut(&v)
		n++
	}
	return n
}

// handleOut applies one shard answer on this loop.
func (ls *loopState) handleOut(o *out) {
	switch o.kind {
	case outDeliver:
		ls.deliver(o.room, o.msg)
		o.msg.release()
	case outAck:
		if s := o.sess; !s.closed {
			s.write(ls.appendAck(s, ls.idFor(s, o.msg), o.room, o.seq))
		}
		o.msg.release()
	case outJoined:
		ls.joined(o)
	case outResult:
		if s := o.sess; !s.closed {
			s.write(ls.resultFrame(s, o))
		}
		o.msg.release()
	case outNotice:
		ls.writeToMembers(o.room, o.msg, true)
		o.msg.release()
	case outReply:
		if s := o.sess; !s.closed {
			s.write(ls.envelopeFrame(s, o.msg.data))
		}
		o.msg.release()
	case outLeft:
		s := o.sess
		if !s.closed {
			if m := s.find(o.room); m != nil {
				ls.removeFromView(s, m)
				ls.settle(s, m)
			}
			s.write(ls.appendLeft(s, ls.idFor(s, o.msg), o.room))
		}
		if o.msg != nil {
			o.msg.release()
		}
	}
}

// settle notes that one request about m was answered, and forgets m when
// nothing is in flight and the session is no longer a member.
func (ls *loopState) settle(s *session, m *membership) {
	m.pending--
	if m.pending <= 0 && !m.counted {
		ls.removeFromView(s, m)
		s.forget(m.room)
	}
}

// idFor returns the request id m carries, in s's current encoding (the
// client may have switched encodings since it sent the request).
func (ls *loopState) idFor(s *session, m *Message) []byte {
	if m == nil || m.id == nil {
		return nil
	}
	if m.enc == s.enc {
		return m.id
	}
	ls.idConv = transcode(ls.idConv[:0], m.id, m.enc, s.enc)
	return ls.idConv
}

// joined completes a join: view membership, the answer, then the replay.
func (ls *loopState) joined(o *out) {
	s := o.sess
	if !s.closed {
		if m := s.find(o.room); m != nil {
			ls.addToView(s, m)
			ls.settle(s, m)
		}
		s.write(ls.appendJoined(s, ls.idFor(s, o.msg), o.room, o.seq, o.recovered))
		for _, m := range o.replay {
			s.write(ls.messageFrame(s, m))
		}
	}
	for _, m := range o.replay {
		m.release()
	}
	if o.msg != nil {
		o.msg.release()
	}
}

// deliver writes m to every local member of r, encoding each frame variant
// (JSON/msgpack × plain/deflate) at most once.
func (ls *loopState) deliver(r *room, m *Message) {
	n := ls.writeToMembers(r, m, false)
	if n == 0 {
		return
	}
	ls.counters.delivered.Add(uint64(n))
	if m.t0 != 0 {
		// One clock read per drain, or (inline) the send's time: not one
		// per message.
		now := ls.drainAt
		switch {
		case now != 0:
		case ls.inDrain:
			now = netpoll.MonoNow()
			ls.drainAt = now
		case ls.sentAt != 0:
			now = ls.sentAt
		default:
			now = netpoll.MonoNow()
		}
		ls.metrics.e2e.Record(now - m.t0)
		if m.tp != 0 {
			ls.metrics.fanout.Record(now - m.tp)
		}
	}
}

// messageFrame encodes m as a `message` frame for s's encoding.
func (ls *loopState) messageFrame(s *session, m *Message) []byte {
	data := m.data
	if m.enc != s.enc && data != nil {
		ls.conv = transcode(ls.conv[:0], data, m.enc, s.enc)
		data = ls.conv
	}
	b := ls.np.BeginFrame(len(data) + len(m.room.name) + 64)
	if s.enc == encJSON {
		b = protocol.AppendMessageJSON(b, m.room.nameB, m.seq, data)
	} else {
		b = protocol.AppendMessageMsgpack(b, m.room.nameB, m.seq, data)
	}
	return ls.finish(s, b)
}

// envelopeFrame makes a frame of a whole JSON envelope built by a shard
// (a presence notice or answer), transcoded for a msgpack client.
func (ls *loopState) envelopeFrame(s *session, env []byte) []byte {
	if s.enc != encJSON {
		ls.conv = transcode(ls.conv[:0], env, encJSON, s.enc)
		env = ls.conv
	}
	b := ls.np.BeginFrame(len(env))
	b = append(b, env...)
	return ls.finish(s, b)
}

// writeToMembers writes m to this loop's members of r, encoding each
// frame variant (JSON/msgpack × plain/deflate) at most once: as a
// `message` frame, or (envelope) m.data as a whole JSON envelope (a
// presence notice). It returns how many members it wrote to.
func (ls *loopState) writeToMembers(r *room, m *Message, envelope bool) int {
	v := r.views[ls.index]
	if v == nil || len(v.members) == 0 {
		return 0
	}
	ls.frames = [4][]byte{}
	n := 0
	for _, s := range v.members {
		if !envelope && (s.lag != nil || s.bp != nil || r.bp != nil) {
			if bp := s.policyFor(r); bp != nil && ls.deliverLagging(s, r, m, bp) {
				continue // queued, dropped, or closed
			}
		}
		n++
		k := int(s.enc) << 1
		if s.conn.Deflate() {
			k |= 1
		}
		f := ls.frames[k]
		if f == nil {
			if envelope {
				f = ls.envelopeFrame(s, m.data)
			} else {
				f = ls.messageFrame(s, m)
			}
			ls.frames[k] = f
		}
		s.conn.Write(f)
	}
	ls.writes += n
	return n
}

// resultFrame encodes a pipeline's result for s.
func (ls *loopState) resultFrame(s *session, o *out) []byte {
	m := o.msg
	data := m.data
	if s.enc != encJSON {
		ls.conv = transcode(ls.conv[:0], data, encJSON, s.enc)
		data = ls.conv
	}
	id := ls.idFor(s, m)
	b := ls.np.BeginFrame(len(data) + len(id) + len(o.stream) + 48)
	if s.enc == encJSON {
		b = protocol.AppendResultJSON(b, id, o.stream, data)
	} else {
		b = protocol.AppendResultMsgpack(b, id, o.stream, data)
	}
	ls.counters.results.Add(1)
	return ls.finish(s, b)
}

// finish turns a BeginFrame buffer into a frame for s (compressed when s
// negotiated deflate and the payload is long enough).
func (ls *loopState) finish(s *session, b []byte) []byte {
	op := netpoll.OpText
	if s.enc == encMsgpack {
		op = netpoll.OpBinary
	}
	if s.conn.Deflate() && len(b)-netpoll.MaxHeaderSize >= ls.e.cfg.CompressionThreshold {
		return ls.np.AppendMessageFrame(op, b[netpoll.MaxHeaderSize:], true)
	}
	return ls.np.EndFrame(b, op)
}

func (s *session) write(frame []byte) { s.conn.Write(frame) }

// transcode converts one encoded value between JSON and msgpack; a value
// that cannot be converted becomes null.
func transcode(dst, v []byte, from, to encoding) []byte {
	var out []byte
	var err error
	if from == encJSON && to == encMsgpack {
		out, err = protocol.JSONToMsgpack(dst, v)
		if err != nil {
			return append(dst[:0], 0xc0)
		}
		return out
	}
	if from == encMsgpack && to == encJSON {
		out, err = protocol.MsgpackToJSON(dst, v)
		if err != nil {
			return append(dst[:0], "null"...)
		}
		return out
	}
	return append(dst, v...)
}

package engine

import (
	"errors"
	"streamd/ring"

	"streamd/netpoll"
	"streamd/protocol"
)

// Error codes the engine answers with (besides the decoder's: bad_json,
// bad_msgpack, missing_type, unknown_type, bad_field).
const (
	CodeMissingRoom   = "missing_room"
	CodeRoomTooLong   = "room_too_long"
	CodeInvalidRoom   = "invalid_room"
	CodeNotJoined     = "not_joined"
	CodeTooManyRooms  = "too_many_rooms"
	CodeUnknownStream = "unknown_stream"
	CodeMissingStream = "missing_stream"
	CodeUnknownRoom   = "unknown_room"
	CodeForbidden     = "forbidden"
)

// sysPrefix starts the names of the engine's system rooms ($sys.metrics,
// $sys.alerts): clients may join them, only the engine publishes.
var sysPrefix = []byte("$sys.")

// netpoll.Handler implementation: every method runs on the connection's loop.

func (e *Engine) loopState(l *netpoll.Loop) *loopState {
	if ls, ok := l.Ctx.(*loopState); ok {
		return ls
	}
	ls := &loopState{e: e, np: l, index: l.Index(), rooms: make(map[string]*room)}
	if !e.inline {
		ls.toShard = make([]*ring.SPSC[command], len(e.shards))
		for i, sh := range e.shards {
			ls.toShard[i] = sh.in[ls.index]
		}
	}
	l.Ctx = ls
	e.loops[ls.index].Store(ls)
	return ls
}

// OnOpen greets the client.
func (e *Engine) OnOpen(c *netpoll.Conn) {
	ls := e.loopState(c.Loop())
	s := &session{id: e.nextSession.Add(1), conn: c, ls: ls}
	if c.Subprotocol() == netpoll.SubprotocolMsgpack {
		s.enc = encMsgpack
	}
	c.Ctx = s
	if !ls.openSession(s) {
		return // refused: an error and a close are on their way
	}
	bp, err := e.connBackpressure(c.Path())
	if err != nil {
		ls.replyErrorUncounted(s, nil, &protocol.Error{Code: protocol.CodeBadField, Message: err.Error()})
		c.Close(1008, "bad backpressure parameter")
		return
	}
	s.bp = bp
	b := ls.np.BeginFrame(80)
	hb := e.cfg.HeartbeatInterval.Milliseconds()
	switch {
	case s.enc == encJSON && s.who == nil:
		b = protocol.AppendWelcomeAuthJSON(b, s.id, hb)
	case s.enc == encJSON:
		b = protocol.AppendWelcomeJSON(b, s.id, hb)
	case s.who == nil:
		b = protocol.AppendWelcomeAuthMsgpack(b, s.id, hb)
	default:
		b = protocol.AppendWelcomeMsgpack(b, s.id, hb)
	}
	s.write(ls.finish(s, b))
}

// OnClose leaves every room quietly.
func (e *Engine) OnClose(c *netpoll.Conn, _ error) {
	s, _ := c.Ctx.(*session)
	if s == nil {
		return
	}
	s.closed = true
	s.gone.Store(true)
	ls := s.ls
	ls.arm(s, 0)
	for i := range s.joins {
		m := &s.joins[i]
		ls.removeFromView(s, m)
		if m.counted {
			ls.send(command{kind: cmdDrop, room: m.room, sess: s})
		}
	}
	clear(s.joins)
	s.joins = nil
	c.Ctx = nil
}

// OnWake drains the shards' answers for this loop, within a budget; if
// some are left, the loop flushes and comes back for them.
func (e *Engine) OnWake(l *netpoll.Loop) {
	ls, ok := l.Ctx.(*loopState)
	if !ok {
		return
	}
	if ls.sweepDue.Load() {
		ls.sweepDue.Store(false)
		ls.sweepDeadlines()
	}
	if ls.drainOuts() {
		l.Wake()
	}
	if len(ls.lagging) > 0 {
		ls.drainLagging()
	}
	if len(ls.holding) > 0 {
		ls.releaseHeld()
	}
	if len(ls.rateHolding) > 0 {
		ls.releaseRate()
	}
	if len(ls.paused) > 0 {
		ls.resumeFlows()
	}
}

// OnMessage decodes one envelope and acts on it, and records the ingress
// stage: from the read that brought the frame to the command queued (or
// the answer written).
func (e *Engine) OnMessage(c *netpoll.Conn, op byte, payload []byte) {
	s, _ := c.Ctx.(*session)
	if s == nil {
		return
	}
	if !e.full {
		e.onMessage(s, op, payload, 0)
		return
	}
	ls := s.ls
	t0 := ls.np.Mono()
	ls.sentAt = 0
	e.onMessage(s, op, payload, t0)
	end := ls.sentAt
	if end == 0 {
		end = netpoll.MonoNow()
	}
	ls.metrics.ingress.Record(end - t0)
}

func (e *Engine) onMessage(s *session, op byte, payload []byte, t0 int64) {
	ls := s.ls
	ls.counters.received.Add(1)
	if (e.cfg.MaxMessagesPerSecond > 0 || e.cfg.MaxBytesPerSecond > 0) && !ls.allowed(s, len(payload)) {
		if e.cfg.RateLimitOverflow == RateBlock {
			ls.rateHold(s, op, payload, t0)
		}
		return
	}
	e.handleMessage(s, op, payload, t0)
}

// handleMessage decodes and acts on a message its connection's rate
// limits let through (at once, or after it waited: releaseRate).
func (e *Engine) handleMessage(s *session, op byte, payload []byte, t0 int64) {
	ls := s.ls
	env := &ls.env
	var err error
	if op == netpoll.OpText {
		s.enc = encJSON
		err = ls.dec.DecodeJSON(payload, env)
	} else {
		s.enc = encMsgpack
		err = ls.dec.DecodeMsgpack(payload, env)
	}
	if err != nil {
		ls.replyError(s, env.ID, err)
		return
	}
	if s.who == nil && env.Type != protocol.TypeAuth {
		ls.countAuthFailure(authMissing)
		ls.replyErrorCode(s, env.ID, CodeUnauthenticated, errAuthFirst)
		return
	}
	switch env.Type {
	case protocol.TypeAuth:
		ls.authMessage(s, env)
	case protocol.TypeJoin:
		if r := ls.permittedRoom(s, env.ID, env.Room, actJoin, env.HasSince); r != nil {
			ls.join(s, r, env)
		}
	case protocol.TypeLeave:
		var m *membership
		r, err := ls.existingRoom(env.Room)
		if err == nil && r != nil {
			m = s.find(r)
		}
		if err != nil || m == nil || !m.counted {
			ls.replyError(s, env.ID, notJoined(env.Room, err))
			return
		}
		m.counted = false
		m.pending++
		ls.send(command{kind: cmdLeave, room: r, sess: s, msg: idCarrier(s.enc, env.ID)})
	case protocol.TypePublish:
		// The room this connection was last allowed to publish into
		// needs no new check: a map lookup (as before) and a comparison.
		r := ls.rooms[string(env.Room)]
		if r == nil || r != s.pubRoom {
			if r = ls.permittedRoom(s, env.ID, env.Room, actPublish, false); r == nil {
				return
			}
			s.pubRoom = r
		}
		m := newMessage(s.enc, env.Data, env.ID)
		m.t0 = t0
		if env.Producer != nil && env.HasPSeq {
			m.producer, m.pseq = string(env.Producer), env.PSeq
		}
		if s.who != nil && s.who.authed {
			m.from = s.who.sub // for Erase: no copy, the identity keeps it
		}
		ls.send(command{kind: cmdPublish, room: r, sess: s, msg: m})
	case protocol.TypePing:
		b := ls.np.BeginFrame(32 + len(env.ID))
		if s.enc == encJSON {
			b = protocol.AppendPongJSON(b, env.ID)
		} else {
			b = protocol.AppendPongMsgpack(b, env.ID)
		}
		s.write(ls.finish(s, b))
	case protocol.TypeAck:
		// In a durable room, the position of a member that joined with a
		// user_id is recorded (positions.go); elsewhere an ack of a joined
		// room has no effect.
		r, err := ls.existingRoom(env.Room)
		var m *membership
		if err == nil && r != nil {
			m = s.find(r)
		}
		if m == nil {
			ls.replyError(s, env.ID, notJoined(env.Room, err))
			return
		}
		if r.durable && m.consumer != "" && env.HasSeq {
			ls.send(command{kind: cmdAckPos, room: r, sess: s, since: env.Seq, extra: &cmdExtra{user: m.consumer}})
		}
	case protocol.TypePresence, protocol.TypePresenceStats:
		r, err := ls.existingRoom(env.Room)
		if err == nil && !ls.access(s, env.ID, env.Room, r, actPresence) {
			return
		}
		if err == nil && r == nil {
			if ls.e.cfg.presenceFor(string(env.Room)) {
				r, err = ls.roomFor(env.Room) // an empty presence room answers too
			} else {
				err = errPresenceOff
			}
		}
		if err == nil && r.presence == nil {
			err = errPresenceOff
		}
		if err != nil {
			ls.replyError(s, env.ID, err)
			return
		}
		c := command{kind: cmdPresence, room: r, sess: s, extra: &cmdExtra{cursor: env.Cursor, limit: int(min(env.Limit, MaxPresencePage))}}
		if env.Type == protocol.TypePresenceStats {
			c.kind = cmdPresenceStats
		}
		if env.ID != nil {
			c.msg = idCarrier(encJSON, transcode(nil, env.ID, s.enc, encJSON))
		}
		ls.send(c)
	case protocol.TypeEvent:
		if len(env.Stream) == 0 {
			ls.replyError(s, env.ID, &protocol.Error{Code: CodeMissingStream, Message: "event needs a stream"})
			return
		}
		if err := ls.event(s, env); err != nil {
			ls.replyError(s, env.ID, err)
		}
	default:
		ls.replyError(s, env.ID, &protocol.Error{Code: "unknown_type", Message: "unknown message type " + string(env.TypeName)})
	}
}

func (ls *loopState) join(s *session, r *room, env *protocol.Envelope) {
	c := command{kind: cmdJoin, room: r, sess: s, since: env.Since, hasSince: env.HasSince}
	if r.presence != nil || (r.durable && env.UserID != nil) {
		ex, err := ls.presenceJoin(s, env)
		if err == errUserNotSub {
			ls.forbid(s, env.ID, env.Room, actJoin, msgUserID)
			return
		}
		if err != nil {
			ls.replyError(s, env.ID, err)
			return
		}
		c.extra = ex
	}
	m := s.find(r)
	if m == nil {
		if len(s.joins) >= ls.e.cfg.MaxRoomsPerConn {
			ls.replyError(s, env.ID, &protocol.Error{Code: CodeTooManyRooms, Message: "this connection is in max_rooms_per_conn rooms already"})
			return
		}
		s.joins = append(s.joins, membership{room: r, pos: -1})
		m = &s.joins[len(s.joins)-1]
	}
	if r.durable && env.UserID != nil {
		m.consumer = c.extra.user
	}
	if m.counted {
		c.kind = cmdRejoin // already a member: answer again, count once
	}
	m.counted = true
	m.pending++
	c.msg = idCarrier(s.enc, env.ID)
	ls.send(c)
}

// idCarrier keeps a request id alive until the shard's answer comes back.
func idCarrier(enc encoding, id []byte) *Message {
	if id == nil {
		return nil
	}
	return newMessage(enc, nil, id)
}

// existingRoom returns the room called name, or nil if it does not exist;
// it never creates one (leave and ack must not let clients mint rooms).
func (ls *loopState) existingRoom(name []byte) (*room, error) {
	if r, ok := ls.rooms[string(name)]; ok {
		return r, nil
	}
	if err := protocol.ValidRoomName(name, ls.e.cfg.MaxRoomName); err != nil {
		return nil, err
	}
	if r, ok := ls.e.rooms.Load(string(name)); ok {
		return r.(*room), nil
	}
	return nil, nil
}

func notJoined(name []byte, err error) error {
	if err != nil {
		return err
	}
	return &protocol.Error{Code: CodeNotJoined, Message: "not a member of room " + string(name)}
}

// checkedRoom validates name and returns its room if this loop or the
// engine knows it, else nil; it never creates one (a permission check
// comes first).
func (ls *loopState) checkedRoom(name []byte) (*room, error) {
	r, err := ls.existingRoom(name)
	if r != nil {
		ls.rooms[r.name] = r
	}
	return r, err
}

// permittedRoom returns the room called name once s may do act there
// (and, with history, read its history), creating it only then; nil when
// the name is invalid or s is refused (answered either way).
func (ls *loopState) permittedRoom(s *session, id, name []byte, act action, history bool) *room {
	r, err := ls.checkedRoom(name)
	if err != nil {
		ls.replyError(s, id, err)
		return nil
	}
	if !ls.access(s, id, name, r, act) || (history && !ls.access(s, id, name, r, actHistory)) {
		return nil
	}
	if r == nil {
		if r, err = ls.roomFor(name); err != nil {
			ls.replyError(s, id, err)
			return nil
		}
	}
	return r
}

// roomFor validates name and returns its room, creating it if needed.
func (ls *loopState) roomFor(name []byte) (*room, error) {
	if r, ok := ls.rooms[string(name)]; ok {
		return r, nil
	}
	if err := protocol.ValidRoomName(name, ls.e.cfg.MaxRoomName); err != nil {
		return nil, err
	}
	r, err := ls.e.room(string(name))
	if err != nil {
		return nil, err
	}
	ls.rooms[r.name] = r
	return r, nil
}

// replyError answers s with an error envelope, and counts it.
func (ls *loopState) replyError(s *session, id []byte, err error) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		pe = &protocol.Error{Code: "internal", Message: err.Error()}
	}
	ls.counters.errors.Add(1)
	ls.metrics.errCodes[errorCodeIndex(pe.Code)].Inc()
	ls.replyErrorUncounted(s, id, pe)
}

// replyErrorUncounted answers s with an error envelope (the caller counted it).
func (ls *loopState) replyErrorUncounted(s *session, id []byte, pe *protocol.Error) {
	b := ls.np.BeginFrame(64 + len(id) + len(pe.Code) + len(pe.Message))
	if s.enc == encJSON {
		b = protocol.AppendErrorJSON(b, id, pe.Code, pe.Message)
	} else {
		b = protocol.AppendErrorMsgpack(b, id, pe.Code, pe.Message)
	}
	s.write(ls.finish(s, b))
}

func (ls *loopState) appendAck(s *session, id []byte, r *room, seq uint64) []byte {
	b := ls.np.BeginFrame(48 + len(id) + len(r.nameB))
	if s.enc == encJSON {
		b = protocol.AppendAckJSON(b, id, r.nameB, seq)
	} else {
		b = protocol.AppendAckMsgpack(b, id, r.nameB, seq)
	}
	return ls.finish(s, b)
}

func (ls *loopState) appendLeft(s *session, id []byte, r *room) []byte {
	b := ls.np.BeginFrame(32 + len(id) + len(r.nameB))
	if s.enc == encJSON {
		b = protocol.AppendLeftJSON(b, id, r.nameB)
	} else {
		b = protocol.AppendLeftMsgpack(b, id, r.nameB)
	}
	return ls.finish(s, b)
}

func (ls *loopState) appendJoined(s *session, id []byte, r *room, seq uint64, recovered int8) []byte {
	b := ls.np.BeginFrame(64 + len(id) + len(r.nameB))
	if s.enc == encJSON {
		b = protocol.AppendJoinedJSON(b, id, r.nameB, seq, recovered >= 0, recovered == 1)
	} else {
		b = protocol.AppendJoinedMsgpack(b, id, r.nameB, seq, recovered >= 0, recovered == 1)
	}
	return ls.finish(s, b)
}

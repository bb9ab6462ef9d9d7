package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"streamd/operators"
	"streamd/protocol"
)

// Presence (docs/presence.md). A presence room's shard keeps its members:
// one entry per joined session, with the user id, the join time and the
// client's info. Entries are ordered by a per-room sequence number (ord),
// the cursor of paged queries, so a page boundary survives joins and
// leaves. Counts (members, unique users) are kept as the entries change,
// so presence_stats costs the same in any room.
//
// A session that drops without leaving becomes a ghost for
// Config.PresenceGrace: if a session of the same user joins the room in
// that time it takes the ghost's place and nobody is told anything (no
// leave/join flapping on a reconnect); otherwise the grace timer removes
// the ghost and announces user_left. Counts include ghosts: the user is
// still there as far as the room knows.
//
// Notices go to the room's members through the shard→loop rings, in the
// shard's order, so they are ordered with the room's messages. In a room
// above Config.PresenceCoalesceAbove members they are counted instead and
// sent as one presence_batch per Config.PresenceCoalesceInterval.

// Error codes of presence requests.
const (
	CodePresenceOff   = "presence_off"
	CodeInvalidUserID = "invalid_user_id"
	CodeInfoTooLarge  = "info_too_large"
)

// Limits of what a client may attach to a presence join.
const (
	MaxUserID           = 256  // bytes
	MaxPresenceInfo     = 1024 // bytes of the info value, as JSON
	DefaultPresencePage = 100
	MaxPresencePage     = 1000
)

// presence is one presence room's membership. Shard-owned.
type presence struct {
	r       *room
	entries []*presEntry // by ord
	bySess  map[*session]*presEntry
	users   map[string]int          // entries per user
	ghosts  map[string][]*presEntry // entries in grace, by user
	nextOrd uint64

	joined, left int  // counted notices waiting for the next batch
	batchArmed   bool // a batch timer is set
}

// presEntry is one member (a session, or a ghost in grace).
type presEntry struct {
	p        *presence
	ord      uint64
	sess     *session // nil while a ghost
	session  uint64
	user     string
	joinedAt int64  // Unix ns
	info     []byte // JSON, or nil
	gen      uint64 // grace timer generation
}

// cmdExtra carries what only presence commands need.
type cmdExtra struct {
	user   string
	info   []byte
	cursor uint64
	limit  int
}

func newPresence(r *room) *presence {
	return &presence{r: r, bySess: make(map[*session]*presEntry), users: make(map[string]int), ghosts: make(map[string][]*presEntry)}
}

// join adds s (or gives it a ghost's place). Shard lock held.
func (p *presence) join(sh *shard, x exec, s *session, ex *cmdExtra) {
	if ex == nil || p.bySess[s] != nil {
		return
	}
	if g := p.ghosts[ex.user]; len(g) > 0 {
		e := g[len(g)-1]
		p.ghosts[ex.user] = g[:len(g)-1]
		if len(g) == 1 {
			delete(p.ghosts, ex.user)
		}
		e.sess, e.session, e.info = s, s.id, ex.info
		e.gen++ // its grace timer is void
		p.bySess[s] = e
		return
	}
	p.nextOrd++
	e := &presEntry{p: p, ord: p.nextOrd, sess: s, session: s.id, user: ex.user, joinedAt: time.Now().UnixNano(), info: ex.info}
	p.entries = append(p.entries, e)
	p.bySess[s] = e
	p.users[e.user]++
	p.notice(sh, x, "user_joined", e)
}

// leave removes s at once (explicit) or makes it a ghost (dropped).
func (p *presence) leave(sh *shard, x exec, s *session, explicit bool) {
	e := p.bySess[s]
	if e == nil {
		return
	}
	delete(p.bySess, s)
	if explicit || sh.e.cfg.PresenceGrace <= time.Millisecond {
		p.remove(sh, x, e)
		return
	}
	e.sess = nil
	e.gen++
	p.ghosts[e.user] = append(p.ghosts[e.user], e)
	sh.at(time.Now().Add(sh.e.cfg.PresenceGrace).UnixNano(), e, e.gen)
}

// OnTimer ends a ghost's grace (arg: the generation it was set for).
func (e *presEntry) OnTimer(_ int64, gen uint64) {
	p := e.p
	if e.sess != nil || e.gen != gen {
		return // it came back, or a newer timer is set
	}
	g := p.ghosts[e.user]
	for i, x := range g {
		if x == e {
			g = append(g[:i], g[i+1:]...)
			break
		}
	}
	if len(g) == 0 {
		delete(p.ghosts, e.user)
	} else {
		p.ghosts[e.user] = g
	}
	p.remove(p.r.shard, exec{}, e)
}

// remove deletes e and announces user_left.
func (p *presence) remove(sh *shard, x exec, e *presEntry) {
	i := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].ord >= e.ord })
	if i < len(p.entries) && p.entries[i] == e {
		copy(p.entries[i:], p.entries[i+1:])
		p.entries[len(p.entries)-1] = nil
		p.entries = p.entries[:len(p.entries)-1]
	}
	if p.users[e.user]--; p.users[e.user] <= 0 {
		delete(p.users, e.user)
	}
	p.notice(sh, x, "user_left", e)
}

// notice announces one change, or counts it for the next batch in a big room.
func (p *presence) notice(sh *shard, x exec, typ string, e *presEntry) {
	if len(p.entries) > sh.e.cfg.PresenceCoalesceAbove {
		if typ == "user_joined" {
			p.joined++
		} else {
			p.left++
		}
		if !p.batchArmed {
			p.batchArmed = true
			sh.at(time.Now().Add(sh.e.cfg.PresenceCoalesceInterval).UnixNano(), p, 0)
		}
		return
	}
	b := make([]byte, 0, 96+len(p.r.name)+len(e.user))
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","room":`...)
	b = protocol.AppendJSONString(b, p.r.nameB)
	b = append(b, `,"user_id":`...)
	b = protocol.AppendJSONString(b, []byte(e.user))
	b = append(b, `,"session":"`...)
	b = strconv.AppendUint(b, e.session, 10)
	b = append(b, `","members":`...)
	b = strconv.AppendInt(b, int64(len(p.entries)), 10)
	b = append(b, `,"users":`...)
	b = strconv.AppendInt(b, int64(len(p.users)), 10)
	b = append(b, '}')
	p.broadcast(sh, x, b)
}

// OnTimer sends the counted changes as one presence_batch.
func (p *presence) OnTimer(int64, uint64) {
	p.batchArmed = false
	if p.joined == 0 && p.left == 0 {
		return
	}
	b := make([]byte, 0, 128+len(p.r.name))
	b = append(b, `{"type":"presence_batch","room":`...)
	b = protocol.AppendJSONString(b, p.r.nameB)
	b = append(b, `,"joined":`...)
	b = strconv.AppendInt(b, int64(p.joined), 10)
	b = append(b, `,"left":`...)
	b = strconv.AppendInt(b, int64(p.left), 10)
	b = append(b, `,"members":`...)
	b = strconv.AppendInt(b, int64(len(p.entries)), 10)
	b = append(b, `,"users":`...)
	b = strconv.AppendInt(b, int64(len(p.users)), 10)
	b = append(b, '}')
	p.joined, p.left = 0, 0
	p.broadcast(p.r.shard, exec{}, b)
}

// broadcast hands a notice (a whole JSON envelope) to every loop with members.
func (p *presence) broadcast(sh *shard, x exec, envelope []byte) {
	m := newMessage(encJSON, envelope, nil)
	for li, n := range p.r.loopCount {
		if n > 0 {
			m.retain()
			sh.emit(x, li, out{kind: outNotice, room: p.r, msg: m})
		}
	}
	m.release()
	sh.e.presenceNotices.Add(1)
}

// at sets a shard timer (shard lock held); the presence ticker fires it.
func (sh *shard) at(when int64, t operators.Timed, arg uint64) {
	sh.timers.At(when, t, arg)
	sh.pendingTimers.Add(1)
}

// presenceTick is how often the presence timers are checked.
func (e *Engine) presenceTick() time.Duration {
	tick := min(e.cfg.PresenceGrace, e.cfg.PresenceCoalesceInterval) / 4
	return min(max(tick, 5*time.Millisecond), 100*time.Millisecond)
}

// firePresenceTimers fires the shards' due presence timers (grace ends,
// batches). It runs every presenceTick when some room policy has presence.
func (e *Engine) firePresenceTimers() {
	for _, sh := range e.shards {
		if sh.pendingTimers.Load() == 0 {
			continue
		}
		sh.mu.Lock()
		n := sh.timers.Advance(time.Now().UnixNano())
		sh.pendingTimers.Add(int32(-n))
		sh.flushWakes()
		sh.mu.Unlock()
	}
}

// PresenceMember is one member of a presence room.
type PresenceMember struct {
	UserID   string          `json:"user_id"`
	Session  uint64          `json:"session,string"`
	JoinedAt int64           `json:"joined_at"` // Unix ms
	Info     json.RawMessage `json:"info,omitempty"`
	// Away is true during the grace period after the member's connection
	// dropped (it may still come back).
	Away bool `json:"away,omitempty"`
	ord  uint64
}

// PresencePage is one page of a presence room's members, in join order.
type PresencePage struct {
	Room    string           `json:"room"`
	Members []PresenceMember `json:"members"`
	// Next is the cursor of the next page; 0 when this is the last.
	Next uint64 `json:"next,omitempty"`
}

// PresenceStats are a presence room's counts.
type PresenceStats struct {
	Room    string `json:"room"`
	Members int    `json:"members"` // sessions (ghosts in grace included)
	Users   int    `json:"users"`   // distinct user ids
}

// errUserNotSub refuses a join whose user_id is not the token's subject.
var errUserNotSub = &protocol.Error{Code: CodeForbidden, Message: msgUserID}

var errPresenceOff = &protocol.Error{Code: CodePresenceOff, Message: "presence is off for this room (turn it on in its room policy)"}

// page reads one page. Shard lock held.
func (p *presence) page(cursor uint64, limit int) PresencePage {
	if limit <= 0 {
		limit = DefaultPresencePage
	}
	limit = min(limit, MaxPresencePage)
	pg := PresencePage{Room: p.r.name, Members: []PresenceMember{}}
	i := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].ord >= cursor })
	for ; i < len(p.entries) && len(pg.Members) < limit; i++ {
		e := p.entries[i]
		pg.Members = append(pg.Members, PresenceMember{UserID: e.user, Session: e.session, JoinedAt: e.joinedAt / 1e6,
			Info: e.info, Away: e.sess == nil, ord: e.ord})
	}
	if i < len(p.entries) {
		pg.Next = p.entries[i].ord
	}
	return pg
}

func (p *presence) stats() PresenceStats {
	return PresenceStats{Room: p.r.name, Members: len(p.entries), Users: len(p.users)}
}

// presenceRoom returns the room for a presence query from the API.
func (e *Engine) presenceRoom(name string) (*room, error) {
	if err := protocol.ValidRoomName([]byte(name), e.cfg.MaxRoomName); err != nil {
		return nil, fmt.Errorf("engine: room %q: %w", name, err)
	}
	if !e.cfg.presenceFor(name) {
		return nil, errPresenceOff
	}
	return e.room(name)
}

// Presence returns one page of room's members in join order, from
// cursor (0: the start) and at most limit (0: 100; at most 1000). Safe
// from any goroutine.
func (e *Engine) Presence(roomName string, cursor uint64, limit int) (PresencePage, error) {
	r, err := e.presenceRoom(roomName)
	if err != nil {
		return PresencePage{}, err
	}
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	return r.presence.page(cursor, limit), nil
}

// PresenceStats returns room's member and user counts, in constant time.
// Safe from any goroutine.
func (e *Engine) PresenceStats(roomName string) (PresenceStats, error) {
	r, err := e.presenceRoom(roomName)
	if err != nil {
		return PresenceStats{}, err
	}
	r.shard.mu.Lock()
	st := r.presence.stats()
	r.shard.mu.Unlock()
	return st, nil
}

// answerPresence builds the answer to a presence or presence_stats
// request as a JSON envelope and hands it to the requester's loop.
func (sh *shard) answerPresence(x exec, c *command) {
	p := c.room.presence
	var b []byte
	b = append(b, `{"type":"`...)
	if c.kind == cmdPresenceStats {
		b = append(b, "presence_stats"...)
	} else {
		b = append(b, "presence"...)
	}
	b = append(b, '"')
	if c.msg != nil && c.msg.id != nil {
		b = append(b, `,"id":`...)
		b = append(b, c.msg.id...)
	}
	b = append(b, `,"room":`...)
	b = protocol.AppendJSONString(b, c.room.nameB)
	if c.kind == cmdPresenceStats {
		st := p.stats()
		b = append(b, `,"members":`...)
		b = strconv.AppendInt(b, int64(st.Members), 10)
		b = append(b, `,"users":`...)
		b = strconv.AppendInt(b, int64(st.Users), 10)
	} else {
		pg := p.page(c.extra.cursor, c.extra.limit)
		b = append(b, `,"members":[`...)
		for i, m := range pg.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"user_id":`...)
			b = protocol.AppendJSONString(b, []byte(m.UserID))
			b = append(b, `,"session":"`...)
			b = strconv.AppendUint(b, m.Session, 10)
			b = append(b, `","joined_at":`...)
			b = strconv.AppendInt(b, m.JoinedAt, 10)
			if m.Info != nil {
				b = append(b, `,"info":`...)
				b = append(b, m.Info...)
			}
			if m.Away {
				b = append(b, `,"away":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
		if pg.Next != 0 {
			b = append(b, `,"next":`...)
			b = strconv.AppendUint(b, pg.Next, 10)
		}
	}
	b = append(b, '}')
	if c.msg != nil {
		c.msg.release()
	}
	sh.emit(x, c.sess.ls.index, out{kind: outReply, sess: c.sess, msg: newMessage(encJSON, b, nil)})
}

// presenceJoin checks and prepares what a join adds to a presence room.
// Loop-only.
func (ls *loopState) presenceJoin(s *session, env *protocol.Envelope) (*cmdExtra, error) {
	ex := &cmdExtra{}
	if s.who != nil && s.who.authed {
		// An authenticated connection is its token's subject: a
		// different user_id would be an impersonation.
		if env.UserID != nil && string(env.UserID) != s.who.sub {
			return nil, errUserNotSub
		}
		ex.user = s.who.sub
	} else if env.UserID != nil {
		if err := protocol.ValidRoomName(env.UserID, MaxUserID); err != nil {
			return nil, &protocol.Error{Code: CodeInvalidUserID, Message: "user_id: empty, over 256 bytes, or with control characters"}
		}
		ex.user = string(env.UserID)
	} else {
		ex.user = strconv.FormatUint(s.id, 10)
	}
	if env.Info != nil {
		info := env.Info
		if s.enc == encMsgpack {
			info = transcode(nil, info, encMsgpack, encJSON)
		}
		if len(info) > MaxPresenceInfo {
			return nil, &protocol.Error{Code: CodeInfoTooLarge, Message: "info is over 1024 bytes as JSON"}
		}
		ex.info = append([]byte(nil), info...)
	}
	return ex, nil
}

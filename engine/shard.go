package engine

import (
	"sync"
	"sync/atomic"

	"streamd/netpoll"
	"streamd/operators"
	"streamd/state"

	"streamd/ring"
)

// room is the state of one room. The fields under "shard-owned" are touched
// only by the goroutine holding the room's shard lock; views[i] only by
// loop i. name, shard and jsonName never change.
type room struct {
	name  string
	nameB []byte // name as bytes, for encoders
	shard *shard

	// shard-owned
	seq       uint64
	hist      history
	loopCount []int32 // members per loop; a loop gets deliveries while > 0
	subs      []*subscription

	// presence is set at creation for rooms whose policy has presence on
	// (the pointer never changes; what it points to is shard-owned).
	presence *presence
	// durable is set at creation for rooms whose policy is durable; then
	// committed (shard-owned) is the last seq on disk: what members have
	// been sent and what `joined` reports.
	durable   bool
	committed uint64
	// producers remembers exactly-once publishers (producers.go).
	producers map[string]prodState
	prodClock int64
	// positions are durable-room members' acked seqs, by user (positions.go).
	positions map[string]uint64

	// views[i] is loop i's list of its local members (loop-owned).
	views []*roomView

	// perm is the permission rule of the room (nil: none); set at
	// creation, never changed.
	perm *permRule
	// bp is the room policy's backpressure (nil: none); set at creation.
	bp *bpPolicy
}

// subscription is an embedding-API subscriber (Engine.Subscribe).
type subscription struct {
	fn func(*Message)
}

// cmdKind is what a loop asks of a shard.
type cmdKind uint8

const (
	cmdJoin          cmdKind = iota + 1
	cmdRejoin                // join of a room the session is already in (no count change)
	cmdLeave                 // leave with an answer
	cmdDrop                  // leave without an answer (the session closed)
	cmdPublish               // publish msg to room
	cmdPresence              // presence query (extra: cursor, limit)
	cmdPresenceStats         // presence_stats query
	cmdAckPos                // a durable room member's ack (since: the seq; extra.user: who)
)

// command travels from a loop to the shard that owns its room. The shard
// reads sess only for sess.ls.index, which never changes.
type command struct {
	kind     cmdKind
	hasSince bool
	room     *room
	sess     *session
	msg      *Message // cmdPublish (with its ref); for join/leave carries the id
	since    uint64
	extra    *cmdExtra // presence joins and queries only
	t        int64     // Metrics full: when the loop queued it (Unix ns)
}

// outKind is what a shard tells a loop.
type outKind uint8

const (
	outDeliver outKind = iota + 1 // deliver msg to the room's local members
	outJoined                     // sess joined room
	outLeft                       // sess left room
	outAck                        // sess's publish (msg, with its id) got seq
	outResult                     // a pipeline's result (msg: data and id) for sess
	outNotice                     // a presence notice (msg: a JSON envelope) for room's members
	outReply                      // an answer (msg: a JSON envelope) for sess
)

// out travels from a shard to a loop.
type out struct {
	kind      outKind
	recovered int8 // -1: no since given; 0/1: recovered false/true
	room      *room
	sess      *session
	msg       *Message   // outDeliver/outAck: holds a ref; join/leave: id carrier
	seq       uint64     // outJoined: the room's last seq
	replay    []*Message // outJoined: retained messages to replay
	stream    []byte     // outResult: the stream (immutable, owned by the pipeline)
}

// discard releases what an undeliverable out holds.
func (o *out) discard() {
	if o.msg != nil {
		o.msg.release()
	}
	for _, m := range o.replay {
		m.release()
	}
}

// discard releases what an undeliverable command holds.
func (c *command) discard() {
	if c.msg != nil {
		c.msg.release()
	}
}

// shard owns a set of rooms. Whoever holds mu owns every room of the shard:
// its worker (ModeRings), the loop (ModeInline), or an embedding-API caller.
type shard struct {
	e     *Engine
	index int
	mu    sync.Mutex

	// in[l] carries commands from loop l (ModeRings only).
	in []*ring.SPSC[command]
	// toLoop[l] carries outs to loop l (ModeRings, or API calls in ModeInline).
	toLoop []*ring.SPSC[out]
	wake   []bool // loops to wake at the end of the current batch

	worker *worker // ModeRings only

	counters counters // this shard's totals (published)
	metrics  shardMetrics

	// Presence timers (grace ends, notice batches), fired by the
	// presence ticker under mu; pendingTimers lets it skip idle shards
	// without taking the lock.
	timers        operators.Timers
	pendingTimers atomic.Int32

	batcher *state.Batcher // durable rooms' log appends; nil without durable rooms
}

// exec is who is running shard code now: the loop itself (inline calls may
// hand outs to it directly) or nil (a worker or an API caller).
type exec struct {
	loop *loopState
	now  int64 // Metrics full: the time of this batch (Unix ns), else 0
}

// emit hands o to loop li: directly when that loop is the caller, else by its
// ring (the loop is woken at the end of the batch).
func (sh *shard) emit(x exec, li int, o out) {
	if x.loop != nil && x.loop.index == li {
		// Outs an API caller queued for this loop go first: FIFO per loop.
		x.loop.drainFrom(sh, -1)
		x.loop.handleOut(&o)
		return
	}
	r := sh.toLoop[li]
	for !r.TryPush(o) {
		if sh.e.closing.Load() {
			// The loop may have stopped for good: drop the out rather
			// than wait forever holding the shard.
			o.discard()
			return
		}
		sh.flushWakes()
		sh.e.yield()
	}
	sh.wake[li] = true
}

// flushWakes wakes the loops that got outs since the last call.
func (sh *shard) flushWakes() {
	for li, w := range sh.wake {
		if w {
			sh.wake[li] = false
			if l := sh.e.loops[li].Load(); l != nil {
				l.np.Wake()
			}
		}
	}
}

// handle runs one command. The caller holds sh.mu.
func (sh *shard) handle(x exec, c *command) {
	r := c.room
	li := c.sess.ls.index
	switch c.kind {
	case cmdPresence, cmdPresenceStats:
		sh.answerPresence(x, c)
		return
	case cmdAckPos:
		sh.recordPosition(r, c.extra.user, c.since)
		return
	case cmdJoin, cmdRejoin:
		if c.kind == cmdJoin {
			r.loopCount[li]++
		}
		last := r.seq
		if r.durable {
			last = r.committed // messages after it are on their way to disk
			sh.resumeFrom(r, c)
		}
		o := out{kind: outJoined, room: r, sess: c.sess, msg: c.msg, seq: last, recovered: -1}
		if c.hasSince {
			var complete bool
			o.replay, complete = r.hist.after(r, c.since, last)
			if !complete && r.durable {
				o.replay, complete = sh.replayFromLog(r, c.since, last, o.replay)
			}
			o.recovered = 0
			if complete {
				o.recovered = 1
			}
		}
		sh.emit(x, li, o)
		if r.presence != nil && c.kind == cmdJoin {
			r.presence.join(sh, x, c.sess, c.extra)
		}
	case cmdLeave, cmdDrop:
		if r.loopCount[li] > 0 {
			r.loopCount[li]--
		}
		if c.kind == cmdLeave {
			sh.emit(x, li, out{kind: outLeft, room: r, sess: c.sess, msg: c.msg})
		} else if c.msg != nil {
			c.msg.release()
		}
		if r.presence != nil {
			r.presence.leave(sh, x, c.sess, c.kind == cmdLeave)
		}
	case cmdPublish:
		sh.publish(x, r, c.msg, c.sess)
	}
}

// publish assigns m the room's next seq, keeps it in history, and hands it
// to every loop with members and to every subscriber. It consumes m's ref.
func (sh *shard) publish(x exec, r *room, m *Message, from *session) {
	if m.t0 != 0 {
		m.tp = x.now
		if m.tp == 0 {
			m.tp = netpoll.MonoNow()
		}
	}
	if sh.checkProducer(x, r, m, from) {
		return
	}
	r.seq++
	m.seq, m.room = r.seq, r
	sh.recordProducer(r, m)
	if r.durable {
		sh.appendDurable(x, r, m, from)
		return
	}
	sh.deliverPublished(x, r, m, from)
}

// deliverPublished is the rest of publish once m has its seq (and, in a
// durable room, is on disk). It consumes m's ref.
func (sh *shard) deliverPublished(x exec, r *room, m *Message, from *session) {
	r.hist.push(m)
	for _, s := range r.subs {
		s.fn(m)
	}
	if from != nil && m.id != nil {
		// The ack goes first, so a publisher in the room learns the seq
		// before it sees its own message.
		m.retain()
		sh.emit(x, from.ls.index, out{kind: outAck, room: r, sess: from, msg: m, seq: m.seq})
	}
	for li, n := range r.loopCount {
		if n > 0 {
			m.retain()
			sh.emit(x, li, out{kind: outDeliver, room: r, msg: m})
		}
	}
	sh.counters.published.Add(1)
	m.release()
}

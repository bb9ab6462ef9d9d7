package engine

import (
	"encoding/binary"
	"time"

	"streamd/state"
)

// At-least-once to clients (docs/durability.md). A member of a durable
// room that joined with a user_id may `ack` the seqs it has processed; the
// room records the highest per user, in its state store. When that user
// joins the room again without `since`, it resumes after its recorded
// position: everything it did not ack is replayed (from memory or the
// log), so a crash or a lost connection on either side loses nothing the
// client did not confirm. A user with no recorded position joins live.

const (
	positionNS  = "position" // state namespace: room \x00 user → seq
	positionTTL = 30 * 24 * time.Hour
)

// recordPosition raises user's position in r. Shard lock held.
func (sh *shard) recordPosition(r *room, user string, seq uint64) {
	if seq > r.committed { // cannot have processed what was not sent
		seq = r.committed
	}
	if r.positions == nil {
		r.positions = make(map[string]uint64)
	}
	if seq <= r.positions[user] {
		return
	}
	r.positions[user] = seq
	if sh.batcher != nil {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], seq)
		_ = sh.batcher.Put(state.Key(positionNS, r.name+"\x00"+user), v[:], positionTTL, nil)
	}
}

// resumeFrom turns a join without since by a user with a recorded
// position into a join since that position. Shard lock held.
func (sh *shard) resumeFrom(r *room, c *command) {
	if c.hasSince || c.extra == nil || c.extra.user == "" {
		return
	}
	if pos, ok := r.positions[c.extra.user]; ok {
		c.since, c.hasSince = pos, true
	}
}

// recoverPositions loads a durable room's recorded positions.
func (e *Engine) recoverPositions(r *room) error {
	prefix := state.Key(positionNS, r.name+"\x00")
	return e.store.Scan(prefix, func(key, value []byte) bool {
		if len(value) == 8 {
			if r.positions == nil {
				r.positions = make(map[string]uint64)
			}
			r.positions[string(key[len(prefix):])] = binary.BigEndian.Uint64(value)
		}
		return true
	})
}

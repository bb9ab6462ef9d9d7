package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"streamd/pipeline"
	"streamd/protocol"
	"streamd/state"
)

// Durable rooms (docs/durability.md). A message published into a durable
// room gets its seq at once but is appended to the Badger room log
// through its shard's Batcher (one write batch per millisecond or so, one
// fsync for all of them) and only when that commit is on disk does the
// shard put it in history, deliver it to members and acknowledge it to its
// publisher — so an `ack` means "on disk", and nobody ever sees a message
// a crash can take back. A commit that fails answers the publisher with
// `not_durable` and the message is not delivered (its seq stays unused).
// After a restart a room's seq continues from its log's last seq, and a
// `join … since` that memory cannot serve is read from the log.

// CodeNotDurable answers a publish whose durable write failed.
const CodeNotDurable = "not_durable"

// Log entries carry the data's encoding and flags in their first byte;
// with logFrom, the publisher's subject follows (uvarint length, bytes),
// then the data.
const (
	logEncMask = 0x0f
	logErased  = 0x20 // erased (Engine.Erase): replayed with data null
	logFrom    = 0x40 // the publisher's subject follows the flag byte
	logNull    = 0x80 // the data was null (absent)
)

// appendLogEntry encodes m for the room log.
func appendLogEntry(buf []byte, m *Message) []byte {
	flags := byte(m.enc)
	if m.data == nil {
		flags |= logNull
	}
	if m.from != "" {
		flags |= logFrom
	}
	buf = append(buf, flags)
	if m.from != "" {
		buf = binary.AppendUvarint(buf, uint64(len(m.from)))
		buf = append(buf, m.from...)
	}
	return append(buf, m.data...)
}

// parseLogEntry splits a log entry: encoding, publisher ("" when none),
// data (nil: null) and whether it was erased.
func parseLogEntry(e []byte) (enc encoding, from, data []byte, erased, ok bool) {
	if len(e) == 0 {
		return 0, nil, nil, false, false
	}
	flags := e[0]
	rest := e[1:]
	if flags&logFrom != 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return 0, nil, nil, false, false
		}
		from, rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	if flags&logNull == 0 {
		data = rest
	}
	return encoding(flags & logEncMask), from, data, flags&logErased != 0, true
}

// anyDurable reports whether some room policy is durable.
func (c *Config) anyDurable() bool {
	for _, p := range c.Rooms {
		if p.Durable {
			return true
		}
	}
	return false
}

// usesStore reports whether some pipeline has a node that keeps state in
// the store (ops session and state, classify with a model).
func usesStore(specs []pipeline.Spec) bool {
	for _, s := range specs {
		for _, n := range s.Nodes {
			if n.Op == "session" || n.Op == "state" || n.Op == "classify" && n.Model != "" {
				return true
			}
		}
		if s.Checkpoint > 0 {
			return true
		}
	}
	return false
}

// durableFor returns whether a room is durable and its log retention.
func (c *Config) durableFor(name string) (bool, state.Retention) {
	for _, p := range c.Rooms {
		if ok, _ := path.Match(p.Match, name); ok {
			return p.Durable, state.Retention{MaxCount: p.LogMaxCount, MaxAge: p.LogMaxAge, MaxBytes: p.LogMaxBytes}
		}
	}
	return false, state.Retention{}
}

// openState opens the store and one batcher per shard when some room is
// durable.
func (e *Engine) openState() error {
	if !e.cfg.anyDurable() && !usesStore(e.cfg.Pipelines) {
		return nil
	}
	st, err := state.Open(state.Options{Dir: e.cfg.Data, InMemory: e.cfg.Data == "", Logger: e.cfg.Logger})
	if err != nil {
		return fmt.Errorf("engine: durable rooms need the state store (data %q): %w", e.cfg.Data, err)
	}
	e.store = st
	e.roomLog = st.Log()
	for _, sh := range e.shards {
		b, err := st.NewBatcher()
		if err != nil {
			e.closeState()
			return fmt.Errorf("engine: state: %w", err)
		}
		sh.batcher = b
	}
	e.workerWG.Add(1)
	go e.every(retentionEvery, e.trimLogs)
	return nil
}

// closeState waits for the appends in flight and closes the store.
func (e *Engine) closeState() {
	for _, sh := range e.shards {
		if sh.batcher != nil {
			_ = sh.batcher.Sync()
			sh.batcher.Close()
			sh.batcher = nil
		}
	}
	if e.store != nil { // the field stays: a late Backup gets ErrClosed
		if err := e.store.Close(); err != nil {
			e.cfg.Logger.Error("engine: closing the state store", "err", err)
		}
	}
}

// recoverRoom sets a durable room's seq from its log (room creation).
func (e *Engine) recoverRoom(r *room) error {
	if e.roomLog == nil {
		return errors.New("engine: durable room without a state store")
	}
	last, _, err := e.roomLog.LastSeq(r.name)
	if err != nil {
		return fmt.Errorf("engine: room %q: reading its log: %w", r.name, err)
	}
	r.seq, r.committed = last, last
	if err := e.recoverProducers(r); err != nil {
		return err
	}
	return e.recoverPositions(r)
}

// appendDurable hands m (seq assigned) to the room log; the commit's
// callback delivers it. Shard lock held.
func (sh *shard) appendDurable(x exec, r *room, m *Message, from *session) {
	buf := appendLogEntry(make([]byte, 0, 2+len(m.from)+len(m.data)), m)
	err := sh.batcher.Append(r.name, m.seq, buf, func(err error) {
		sh.mu.Lock()
		sh.durableDone(exec{}, r, m, from, err)
		sh.flushWakes()
		sh.mu.Unlock()
	})
	if err != nil {
		sh.durableDone(x, r, m, from, err)
	}
}

// durableDone finishes a durable publish. Shard lock held.
func (sh *shard) durableDone(x exec, r *room, m *Message, from *session, err error) {
	if err == nil {
		r.committed = max(r.committed, m.seq)
		sh.deliverPublished(x, r, m, from)
		return
	}
	sh.e.cfg.Logger.Error("engine: durable append failed: message not delivered", "room", r.name, "seq", m.seq, "err", err)
	if p, ok := r.producers[m.producer]; ok && m.producer != "" && p.seq == m.seq {
		delete(r.producers, m.producer) // not applied: a resend must go through
	}
	sh.e.durableFailures.Add(1)
	if from != nil && m.id != nil {
		id := m.id
		if m.enc != encJSON {
			id = transcode(nil, id, m.enc, encJSON)
		}
		b := protocol.AppendErrorJSON(nil, id, CodeNotDurable, "the message could not be written to disk and was not delivered: "+err.Error())
		sh.emit(x, from.ls.index, out{kind: outReply, sess: from, msg: newMessage(encJSON, b, nil)})
	}
	m.release()
}

// replayFromLog reads (since, last] from r's log for a join that memory
// cannot serve; it releases mem (what memory had) when the log has more.
// Shard lock held (the read blocks the shard: fine for catch-ups of
// thousands of messages; a bulk replay path is for later).
func (sh *shard) replayFromLog(r *room, since, last uint64, mem []*Message) ([]*Message, bool) {
	if sh.e.roomLog == nil || since >= last {
		return mem, since == last
	}
	var msgs []*Message
	first := uint64(0)
	err := sh.e.roomLog.Range(r.name, since+1, last, func(seq uint64, data []byte) bool {
		if first == 0 {
			first = seq
		}
		enc, _, d, _, ok := parseLogEntry(data)
		if !ok {
			return true
		}
		m := newMessage(enc, d, nil)
		m.room, m.seq = r, seq
		msgs = append(msgs, m)
		return true
	})
	if err != nil || len(msgs) < len(mem) {
		for _, m := range msgs {
			m.release()
		}
		if err != nil {
			sh.e.cfg.Logger.Error("engine: reading a room log for a join", "room", r.name, "err", err)
		}
		return mem, false
	}
	for _, m := range mem {
		m.release()
	}
	return msgs, first == since+1
}

// trimLogs trims the durable rooms' logs to their policies (every
// retentionEvery).
func (e *Engine) trimLogs() {
	if _, err := e.roomLog.TrimAll(func(room string) state.Retention {
		_, r := e.cfg.durableFor(room)
		return r
	}); err != nil {
		e.cfg.Logger.Warn("engine: trimming room logs", "err", err)
	}
}

// retentionEvery is how often room logs are trimmed.
const retentionEvery = 10 * time.Second

// Backup streams a full backup of the state store to w (Badger's
// streaming backup, taken from a consistent snapshot while the engine
// runs) and returns the version it reached. It fails when the engine has
// no store (no durable room). Safe from any goroutine.
func (e *Engine) Backup(w io.Writer) (uint64, error) {
	st := e.store
	if st == nil {
		return 0, errors.New("engine: no state store to back up: no room policy is durable")
	}
	return st.Backup(w, 0)
}

// StateEntry is one key of a pipeline's keyed state.
type StateEntry struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// State reads what pipeline's `state` sinks wrote: the key given, or
// (key "") every key starting with prefix, at most limit (0: 100). Safe
// from any goroutine.
func (e *Engine) State(pipelineName, key, prefix string, limit int) ([]StateEntry, error) {
	st := e.store
	if st == nil {
		return nil, errors.New("engine: no state store: no pipeline has a state or session node and no room is durable")
	}
	ns := pipeline.StateNamespace(pipelineName)
	if key != "" {
		v, err := st.Get(state.Key(ns, key))
		if err != nil {
			return nil, err
		}
		return []StateEntry{{Key: key, Value: v}}, nil
	}
	if limit <= 0 {
		limit = 100
	}
	var out []StateEntry
	pre := state.Key(ns, prefix)
	full := state.Key(ns, "")
	err := st.Scan(pre, func(k, v []byte) bool {
		out = append(out, StateEntry{Key: string(k[len(full):]), Value: append(json.RawMessage(nil), v...)})
		return len(out) < limit
	})
	return out, err
}

package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"streamd/operators"
	"streamd/state"
)

// Checkpoints (docs/durability.md). A pipeline with `checkpoint: D` keeps
// its effects in memory between checkpoints: the writes of its `state`
// sinks and the messages of its room outputs (an outbox). Every D, the
// host takes a Checkpoint — the open windows of its aggregates, those
// writes, the outbox, and the host's own input positions — and commits it
// in one Badger transaction. Only then are the inputs acknowledged and the
// outbox published (each message with the pipeline as producer and its
// outbox number as pseq, so that a durable room applies it once even when
// a restart publishes it again). A crash loses only what no checkpoint
// committed, and producers resend exactly that: nothing is lost, nothing
// counted twice.

// Store namespaces of checkpoints.
const (
	ckptNS   = "ckpt"  // pipeline → the record: outbox counter, node snapshots
	outboxNS = "ckout" // pipeline \x00 seq → room \x00 data
	ckVer    = byte(1) // the record's format
	ckMaxOut = 1 << 20 // outbox messages held before the pipeline refuses more
)

// ErrOutboxFull is what a room output reports when a pipeline holds
// ckMaxOut messages no checkpoint has committed (the store is failing).
var ErrOutboxFull = errors.New("pipeline: the checkpoint outbox is full: the state store is not committing")

// OutboxMsg is a room message committed by a checkpoint, to publish.
type OutboxMsg struct {
	Room string
	Data []byte
	Seq  uint64 // publish it with the pipeline as producer and Seq as pseq
}

// ckState is a checkpointing pipeline's effects since the last
// checkpoint. It outlives reloads (kept nodes hold it). Flow goroutine
// only.
type ckState struct {
	pipeline string
	writes   []state.Op
	outbox   []OutboxMsg
	outNext  uint64   // the next outbox number
	done     []uint64 // outbox numbers published, to delete
	changed  bool     // something happened since the last checkpoint
}

// drop forgets the pending writes of key; it reports whether there were.
func (ck *ckState) drop(key []byte) bool {
	n, found := 0, false
	for _, w := range ck.writes {
		if string(w.Key) == string(key) {
			found = found || !w.Delete
			continue
		}
		ck.writes[n] = w
		n++
	}
	clear(ck.writes[n:])
	ck.writes = ck.writes[:n]
	return found
}

func (ck *ckState) put(key, value []byte, ttl time.Duration) {
	ck.writes = append(ck.writes, state.Op{Key: append([]byte(nil), key...), Value: value, TTL: ttl})
	ck.changed = true
}

// del queues the deletion of key; key is kept, not copied.
func (ck *ckState) del(key []byte) {
	ck.writes = append(ck.writes, state.Op{Key: key, Delete: true})
	ck.changed = true
}

// ckHost buffers room outputs into the outbox; replies go straight on.
type ckHost struct {
	Host
	ck *ckState
}

func (h ckHost) Publish(room string, data []byte) error {
	if len(h.ck.outbox) >= ckMaxOut {
		return ErrOutboxFull
	}
	h.ck.outNext++
	h.ck.outbox = append(h.ck.outbox, OutboxMsg{Room: room, Data: data, Seq: h.ck.outNext})
	h.ck.changed = true
	return nil
}

// checkpointer is a node whose state a checkpoint saves.
type checkpointer interface {
	snapshot(dst []byte) ([]byte, error)
	restore(snap []byte) error
}

// aggNode is an aggregate node that checkpoints its windows.
type aggNode struct {
	*adapted[operators.WindowResult[string]]
	agg *operators.Aggregator[Event, string]
}

func appendStringKey(dst []byte, k string) []byte { return append(dst, k...) }
func decodeStringKey(b []byte) (string, error)    { return string(b), nil }

func (a aggNode) snapshot(dst []byte) ([]byte, error) { return a.agg.Snapshot(dst, appendStringKey) }
func (a aggNode) restore(snap []byte) error           { return a.agg.Restore(snap, decodeStringKey) }

// Checkpointing reports whether the pipeline checkpoints.
func (p *Pipeline) Checkpointing() bool { return p.ck != nil }

// Checkpoint is what one checkpoint commits and, once committed, makes
// visible.
type Checkpoint struct {
	// Ops are the pipeline's writes; the host appends its own (input
	// positions) and commits them all in one state.Store.Commit.
	Ops []state.Op
	// Outbox is to publish once Ops are committed.
	Outbox []OutboxMsg
}

// Dirty reports whether anything happened since the last checkpoint.
func (p *Pipeline) Dirty() bool { return p.ck != nil && p.ck.changed }

// MarkDirty notes an input the next checkpoint must cover (the host calls
// it for each event it admits).
func (p *Pipeline) MarkDirty() {
	if p.ck != nil {
		p.ck.changed = true
	}
}

// TakeCheckpoint returns the writes of a checkpoint of the pipeline as it
// is now, and starts collecting the next one. Flow goroutine only.
func (p *Pipeline) TakeCheckpoint() (*Checkpoint, error) {
	ck := p.ck
	if ck == nil {
		return nil, errors.New("pipeline: not checkpointing")
	}
	rec := []byte{ckVer}
	rec = binary.AppendUvarint(rec, ck.outNext)
	n := 0
	for _, b := range p.nodes {
		if _, ok := b.node.(checkpointer); ok {
			n++
		}
	}
	rec = binary.AppendUvarint(rec, uint64(n))
	for name, b := range p.nodes {
		c, ok := b.node.(checkpointer)
		if !ok {
			continue
		}
		rec = binary.AppendUvarint(rec, uint64(len(name)))
		rec = append(rec, name...)
		h := specHash(&b.spec)
		rec = append(rec, h[:]...)
		snap, err := c.snapshot(nil)
		if err != nil {
			return nil, fmt.Errorf("pipeline %q: node %q: %w", p.Spec.Name, name, err)
		}
		rec = append(binary.AppendUvarint(rec, uint64(len(snap))), snap...)
	}
	cp := &Checkpoint{Ops: make([]state.Op, 0, len(ck.writes)+len(ck.outbox)+len(ck.done)+1)}
	cp.Ops = append(cp.Ops, ck.writes...)
	for _, m := range ck.outbox {
		v := append(append([]byte(m.Room), 0), m.Data...)
		cp.Ops = append(cp.Ops, state.Op{Key: outboxKey(ck.pipeline, m.Seq), Value: v})
	}
	for _, seq := range ck.done {
		cp.Ops = append(cp.Ops, state.Op{Key: outboxKey(ck.pipeline, seq), Delete: true})
	}
	cp.Ops = append(cp.Ops, state.Op{Key: state.Key(ckptNS, ck.pipeline), Value: rec})
	cp.Outbox = ck.outbox
	clear(ck.writes)
	ck.writes, ck.outbox, ck.done, ck.changed = ck.writes[:0], nil, nil, false
	return cp, nil
}

// Published notes outbox messages the host published: the next
// checkpoint deletes them. Flow goroutine only.
func (p *Pipeline) Published(msgs []OutboxMsg) {
	if p.ck == nil || len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		p.ck.done = append(p.ck.done, m.Seq)
	}
	p.ck.changed = true
}

func outboxKey(pipeline string, seq uint64) []byte {
	k := state.Key(outboxNS, pipeline+"\x00")
	return binary.BigEndian.AppendUint64(k, seq)
}

// specHash identifies a node's definition: a checkpoint of a node whose
// definition changed is not restored into it.
func specHash(ns *NodeSpec) [8]byte {
	b, _ := json.Marshal(ns)
	s := sha256.Sum256(b)
	return [8]byte(s[:8])
}

// RestoreCheckpoint loads the pipeline's last checkpoint from st, before
// its flow opens: the aggregates' windows, the outbox counter, and the
// outbox messages committed but maybe not published, which the host
// publishes again (returned). Nodes whose definition changed since start
// empty; the second result names them. Flow goroutine only.
func (p *Pipeline) RestoreCheckpoint(st *state.Store) (outbox []OutboxMsg, skipped []string, err error) {
	ck := p.ck
	if ck == nil {
		return nil, nil, nil
	}
	rec, err := st.Get(state.Key(ckptNS, ck.pipeline))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline %q: read checkpoint: %w", p.Spec.Name, err)
	}
	bad := func() error {
		return fmt.Errorf("pipeline %q: the checkpoint record is corrupt (restore a backup, or delete key %s/%s to start empty)", p.Spec.Name, ckptNS, ck.pipeline)
	}
	if len(rec) == 0 || rec[0] != ckVer {
		return nil, nil, bad()
	}
	r := rec[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	outNext, ok1 := next()
	nn, ok2 := next()
	if !ok1 || !ok2 {
		return nil, nil, bad()
	}
	for range nn {
		l, ok := next()
		if !ok || l > uint64(len(r)) {
			return nil, nil, bad()
		}
		name := string(r[:l])
		r = r[l:]
		if len(r) < 8 {
			return nil, nil, bad()
		}
		h := [8]byte(r[:8])
		r = r[8:]
		sl, ok := next()
		if !ok || sl > uint64(len(r)) {
			return nil, nil, bad()
		}
		snap := r[:sl]
		r = r[sl:]
		b := p.nodes[name]
		c, isCk := checkpointer(nil), false
		if b != nil {
			c, isCk = b.node.(checkpointer)
		}
		if !isCk || specHash(&b.spec) != h {
			skipped = append(skipped, name)
			continue
		}
		if err := c.restore(snap); err != nil {
			return nil, nil, fmt.Errorf("pipeline %q: node %q: restore its checkpoint: %w", p.Spec.Name, name, err)
		}
	}
	ck.outNext = outNext
	prefix := state.Key(outboxNS, ck.pipeline+"\x00")
	err = st.Scan(prefix, func(key, value []byte) bool {
		if len(key) != len(prefix)+8 {
			return true
		}
		room, data, ok := bytes.Cut(value, []byte{0})
		if !ok {
			return true
		}
		outbox = append(outbox, OutboxMsg{Room: string(room), Data: append([]byte(nil), data...), Seq: binary.BigEndian.Uint64(key[len(prefix):])})
		return true
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline %q: read the outbox: %w", p.Spec.Name, err)
	}
	return outbox, skipped, nil
}

package engine

import (
	"encoding/binary"
	"strconv"
	"time"

	"streamd/protocol"
	"streamd/state"
)

// Exactly-once publishing (docs/durability.md). A publish that carries
// "producer":P and "pseq":N is applied once per (room, P, N): the room
// remembers, per producer, the last pseq it applied and the seq it got.
// A publish whose pseq is not above that (a resend after a reconnect) is
// not published again; its publisher gets an ack with the seq the
// original got (for the last pseq) and "duplicate":true. In a durable room
// the remembered pseqs are written in the same commit as the messages, so
// a restart does not forget them; in other rooms they live in memory.
// Each room remembers at most maxProducers producers (the least recently
// seen go first) and a durable room's entries expire after producerTTL.

const (
	maxProducers = 100_000
	producerTTL  = 24 * time.Hour
	producerNS   = "producer" // state namespace: room \x00 producer → pseq, seq
)

// prodState is what a room remembers of one producer.
type prodState struct {
	pseq, seq uint64
	used      int64 // for eviction (the room's publish count when last seen)
}

// checkProducer reports whether a publish is a duplicate (and answers it
// then). Shard lock held.
func (sh *shard) checkProducer(x exec, r *room, m *Message, from *session) (duplicate bool) {
	if m.producer == "" {
		return false
	}
	p, ok := r.producers[m.producer]
	if !ok || m.pseq > p.pseq {
		return false
	}
	sh.e.duplicates.Add(1)
	if from != nil && m.id != nil {
		id := m.id
		if m.enc != encJSON {
			id = transcode(nil, id, m.enc, encJSON)
		}
		b := make([]byte, 0, 96+len(id)+len(r.name))
		b = append(b, `{"type":"ack","id":`...)
		b = append(b, id...)
		b = append(b, `,"room":`...)
		b = protocol.AppendJSONString(b, r.nameB)
		b = append(b, `,"seq":`...)
		seq := uint64(0)
		if m.pseq == p.pseq {
			seq = p.seq
		}
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, `,"duplicate":true}`...)
		sh.emit(x, from.ls.index, out{kind: outReply, sess: from, msg: newMessage(encJSON, b, nil)})
	}
	m.release()
	return true
}

// recordProducer remembers m's (producer, pseq) once it has its seq, and
// in a durable room queues its persistence in the same batch as the
// message. Shard lock held.
func (sh *shard) recordProducer(r *room, m *Message) {
	if m.producer == "" {
		return
	}
	if r.producers == nil {
		r.producers = make(map[string]prodState)
	}
	r.prodClock++
	if _, ok := r.producers[m.producer]; !ok && len(r.producers) >= maxProducers {
		evictOldest(r.producers)
	}
	r.producers[m.producer] = prodState{pseq: m.pseq, seq: m.seq, used: r.prodClock}
	if r.durable && sh.batcher != nil {
		var v [16]byte
		binary.BigEndian.PutUint64(v[:8], m.pseq)
		binary.BigEndian.PutUint64(v[8:], m.seq)
		_ = sh.batcher.Put(state.Key(producerNS, r.name+"\x00"+m.producer), v[:], producerTTL, nil)
	}
}

func evictOldest(ps map[string]prodState) {
	var oldest string
	var at int64 = -1
	for k, v := range ps {
		if at < 0 || v.used < at {
			oldest, at = k, v.used
		}
	}
	delete(ps, oldest)
}

// recoverProducers loads a durable room's remembered producers.
func (e *Engine) recoverProducers(r *room) error {
	prefix := state.Key(producerNS, r.name+"\x00")
	return e.store.Scan(prefix, func(key, value []byte) bool {
		if len(value) != 16 {
			return true
		}
		if r.producers == nil {
			r.producers = make(map[string]prodState)
		}
		name := string(key[len(prefix):])
		r.producers[name] = prodState{pseq: binary.BigEndian.Uint64(value[:8]), seq: binary.BigEndian.Uint64(value[8:])}
		return true
	})
}

package engine

import (
	"sync"
	"sync/atomic"
)

// encoding is the envelope encoding of a connection or a payload.
type encoding uint8

const (
	encJSON    encoding = 0 // text frames
	encMsgpack encoding = 1 // binary frames
)

// Message is one message published to a room. It is shared, read-only once
// published, by the room's history, every loop that delivers it, and
// subscribers; refs counts the holders and the last release recycles it.
type Message struct {
	refs atomic.Int32
	room *room
	seq  uint64
	enc  encoding // encoding of data
	data []byte   // raw encoded data value (nil: null); aliases buf
	id   []byte   // publisher's raw id (for the ack); aliases buf
	buf  []byte   // owned storage for data and id
	t0   int64    // Metrics full: when its frame was read (Unix ns), else 0
	// producer and pseq identify an exactly-once publish ("" when none).
	producer string
	pseq     uint64
	tp       int64 // Metrics full: when its shard published it
	// from is the publisher's authenticated subject ("" when anonymous or
	// not from a client), kept in the durable log so Engine.Erase can
	// find what a user published.
	from string
}

// Room returns the room's name.
func (m *Message) Room() string { return m.room.name }

// Seq returns the message's sequence number in its room (1, 2, …).
func (m *Message) Seq() uint64 { return m.seq }

// Data returns the payload as JSON text. For a payload published in msgpack
// it is transcoded on each call. Valid only during a Subscribe callback.
func (m *Message) Data() []byte {
	if m.enc == encJSON {
		return m.data
	}
	return transcode(nil, m.data, encMsgpack, encJSON)
}

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// maxPooledBuf: messages with larger buffers are not pooled.
const maxPooledBuf = 64 << 10

// newMessage returns a Message holding copies of data and id, with one ref.
func newMessage(enc encoding, data, id []byte) *Message {
	m := messagePool.Get().(*Message)
	m.refs.Store(1)
	m.enc = enc
	n := len(data) + len(id)
	if cap(m.buf) < n {
		m.buf = make([]byte, 0, max(n, 256))
	}
	m.buf = append(append(m.buf[:0], data...), id...)
	m.data, m.id = nil, nil
	if data != nil {
		m.data = m.buf[:len(data):len(data)]
	}
	if id != nil {
		m.id = m.buf[len(data):n:n]
	}
	return m
}

func (m *Message) retain() { m.refs.Add(1) }

// release drops one reference; the last one recycles m.
func (m *Message) release() {
	switch n := m.refs.Add(-1); {
	case n > 0:
	case n == 0:
		m.room, m.data, m.id, m.seq, m.t0, m.tp, m.producer, m.pseq, m.from = nil, nil, nil, 0, 0, 0, "", 0, ""
		if cap(m.buf) > maxPooledBuf {
			m.buf = nil
		}
		messagePool.Put(m)
	default:
		panic("engine: Message released more often than retained")
	}
}

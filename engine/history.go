package engine

import "hash/maphash"

// history keeps a room's most recent messages for `join … since`, without
// one heap object per message: the payloads are copied into one byte slice
// and described by a ring of pointer-free entries. A room with 100 kept
// messages is then three objects to the garbage collector, not 100 (with a
// million kept messages, scanning them made the collector the p99).
//
// Bytes of evicted entries are reclaimed by compacting in place when the
// slice is full and more than half of it is dead, so a push costs O(1)
// amortised, allocates nothing once the slice has grown to fit, and the
// memory stays within about 4× the live payloads. Owned by the room's shard.
type history struct {
	capacity int         // entries kept (from the room policy); 0: none
	ents     []histEntry // ring, allocated on the first push
	next     int         // slot for the next entry
	n        int         // entries held
	data     []byte      // payloads; data[base:] holds every live entry
	live     int         // bytes of live payloads
}

type histEntry struct {
	off  uint32 // into data
	size uint32
	enc  encoding
	null bool   // data was absent (nil), or erased
	from uint64 // fromHash of the publisher's subject; 0: none
}

// fromSeed hashes publishers' subjects for history entries.
var fromSeed = maphash.MakeSeed()

// fromHash is a subject's 64-bit hash in history entries (never 0).
func fromHash(sub string) uint64 {
	if sub == "" {
		return 0
	}
	return maphash.String(fromSeed, sub) | 1
}

// push keeps m's payload as the newest entry (m itself is not retained).
func (h *history) push(m *Message) {
	if h.capacity == 0 {
		return
	}
	if h.ents == nil {
		h.ents = make([]histEntry, h.capacity)
	}
	if h.n == h.capacity { // evict the oldest
		h.live -= int(h.ents[h.next].size)
		h.n--
	}
	if len(h.data)+len(m.data) > cap(h.data) && len(h.data) > 2*h.live {
		h.compact() // reuse the dead front before append grows the slice
	}
	h.ents[h.next] = histEntry{off: uint32(len(h.data)), size: uint32(len(m.data)), enc: m.enc, null: m.data == nil, from: fromHash(m.from)}
	h.data = append(h.data, m.data...)
	h.live += len(m.data)
	h.next = (h.next + 1) % h.capacity
	h.n++
}

// compact moves the live payloads to the front of data, in place: entries
// are appended in seq order, so the live bytes are one run starting at the
// oldest entry's offset. No allocation.
func (h *history) compact() {
	if h.n == 0 {
		h.data = h.data[:0]
		return
	}
	oldest := (h.next - h.n + h.capacity) % h.capacity
	base := h.ents[oldest].off
	h.data = h.data[:copy(h.data, h.data[base:])]
	for i := 0; i < h.n; i++ {
		h.ents[(oldest+i)%h.capacity].off -= base
	}
}

// after returns new Messages (each with one ref) for the kept entries with
// seq > since, oldest first, and whether nothing after since was lost (the
// history reaches since+1). A since beyond the room's last seq cannot be
// recovered: the client saw messages this room does not know (e.g. from
// before a restart).
func (h *history) after(r *room, since, last uint64) (msgs []*Message, complete bool) {
	if since >= last {
		return nil, since == last
	}
	oldest := last - uint64(h.n) + 1 // seq of the oldest kept entry
	complete = h.n > 0 && oldest <= since+1
	want := last - max(since, oldest-1)
	if h.n == 0 || want == 0 {
		return nil, complete
	}
	msgs = make([]*Message, 0, want)
	first := last - want + 1
	for i := uint64(0); i < want; i++ {
		e := h.ents[(h.next-int(want)+int(i)+h.capacity)%h.capacity]
		var data []byte
		if !e.null {
			data = h.data[e.off : e.off+e.size]
		}
		m := newMessage(e.enc, data, nil)
		m.room, m.seq = r, first+i
		msgs = append(msgs, m)
	}
	return msgs, complete
}

// erase turns the kept entries published by sub into null ones (their
// seqs stay; their payload bytes are zeroed and reclaimed with the entry),
// and returns how many it erased. Entries are told apart by a
// 64-bit hash of the subject.
func (h *history) erase(sub string) int {
	want := fromHash(sub)
	if want == 0 {
		return 0
	}
	n := 0
	for i := 0; i < h.n; i++ {
		e := &h.ents[(h.next-h.n+i+h.capacity)%h.capacity]
		if e.from != want {
			continue
		}
		clear(h.data[e.off : e.off+e.size]) // the bytes go now; the room reclaims them when the entry leaves
		e.null, e.from = true, 0
		n++
	}
	return n
}

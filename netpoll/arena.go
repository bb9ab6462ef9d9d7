package netpoll

import "unsafe"

// arena hands out byte slices that live until the loop's next flush: frames
// built while handling a batch are queued on connections by reference and
// written, joined, per connection at the end of the batch, after which
// every slice is dead and the arena is reset. Loop-only.
//
// Small requests are carved from 64 KiB chunks kept across batches; a request
// larger than a quarter chunk gets its own buffer, dropped at reset (so a rare
// 1 MiB frame does not pin 1 MiB per loop). The chunks kept follow what
// batches use: as many as the largest recent batch filled (a loop that
// drains lagging members writes up to lag_bytes/2 each per batch), at
// least arenaKeep and at most arenaKeepMax; the peak decays by one chunk
// every arenaDecay batches that used fewer, so a burst does not pin its
// memory for good and a steady load allocates no chunk per batch.
type arena struct {
	chunk []byte // current chunk; [0:off] is handed out
	off   int
	spare [][]byte // filled chunks of this batch, reused after reset
	full  [][]byte
	peak  int // chunks the largest recent batch used
	below int // batches since peak that used fewer
}

const (
	arenaChunk   = 64 << 10
	arenaKeep    = 4    // chunks always kept (256 KiB per loop)
	arenaKeepMax = 64   // chunks at most kept (4 MiB per loop)
	arenaDecay   = 4096 // batches under the peak before it drops a chunk
)

// reserve returns an empty slice with capacity of at least n bytes. Append to
// it, then pass the result to commit.
func (a *arena) reserve(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, 0, n)
	}
	if a.chunk == nil || a.off+n > len(a.chunk) {
		if a.chunk != nil {
			a.full = append(a.full, a.chunk)
		}
		if k := len(a.spare); k > 0 {
			a.chunk = a.spare[k-1]
			a.spare = a.spare[:k-1]
		} else {
			a.chunk = make([]byte, arenaChunk)
		}
		a.off = 0
	}
	return a.chunk[a.off:a.off:len(a.chunk)]
}

// commit marks b (a slice grown from reserve) as used. If b outgrew its
// reservation, append moved it to the heap and nothing needs marking.
func (a *arena) commit(b []byte) []byte {
	if len(b) == 0 || a.chunk == nil || a.off >= len(a.chunk) {
		return b
	}
	if unsafe.SliceData(b) == &a.chunk[a.off] {
		a.off += len(b)
	}
	return b
}

// reset makes every slice handed out since the last reset invalid.
func (a *arena) reset() {
	a.off = 0
	used := len(a.full)
	if a.chunk != nil {
		used++
	}
	if used = min(used, arenaKeepMax); used >= a.peak {
		a.peak, a.below = used, 0
	} else if a.below++; a.below >= arenaDecay {
		a.peak, a.below = a.peak-1, 0
	}
	a.spare = append(a.spare, a.full...)
	clear(a.full)
	a.full = a.full[:0]
	// Spares plus the current chunk: keep what the peak batch used.
	if keep := max(a.peak, arenaKeep) - 1; len(a.spare) > keep { // peak ≤ arenaKeepMax
		clear(a.spare[keep:])
		a.spare = a.spare[:keep]
	}
}

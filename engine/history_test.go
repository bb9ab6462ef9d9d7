package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestHistoryMatchesAModel pushes payloads of random sizes into histories
// of several capacities and checks every `after` answer against a plain
// slice model, across compactions.
func TestHistoryMatchesAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := &room{name: "h"}
	for _, capacity := range []int{1, 2, 3, 5, 100} {
		h := history{capacity: capacity}
		var model []string // every payload ever pushed; seq = index+1
		for i := 0; i < 3000; i++ {
			p := fmt.Sprintf(`"%d-%s"`, i, make([]byte, rng.IntN(300)))
			m := newMessage(encJSON, []byte(p), nil)
			h.push(m)
			m.release()
			model = append(model, p)
			last := uint64(len(model))
			if i%7 != 0 {
				continue
			}
			for _, since := range []uint64{0, last - min(last, uint64(capacity)), last - 1, last, last + 3, uint64(rng.IntN(int(last) + 1))} {
				msgs, complete := h.after(r, since, last)
				wantComplete := since == last || (since < last && since+uint64(capacity) >= last)
				if complete != wantComplete {
					t.Fatalf("cap %d last %d since %d: complete %v, want %v", capacity, last, since, complete, wantComplete)
				}
				from := max(since, last-min(last, uint64(capacity)))
				if since > last {
					from = last
				}
				if uint64(len(msgs)) != last-from {
					t.Fatalf("cap %d last %d since %d: %d messages, want %d", capacity, last, since, len(msgs), last-from)
				}
				for k, m := range msgs {
					seq := from + uint64(k) + 1
					if m.seq != seq || string(m.data) != model[seq-1] {
						t.Fatalf("cap %d: entry %d: seq %d %q, want seq %d %q", capacity, k, m.seq, m.data, seq, model[seq-1])
					}
					m.release()
				}
			}
		}
		if cap(h.data) > 4*h.live+2048 {
			t.Fatalf("cap %d: %d bytes held for %d live", capacity, cap(h.data), h.live)
		}
		// Steady state: pushing allocates nothing.
		m := newMessage(encJSON, []byte(`"steady"`), nil)
		if n := testing.AllocsPerRun(1000, func() { h.push(m) }); n != 0 {
			t.Fatalf("cap %d: push allocates %.1f times", capacity, n)
		}
		m.release()
	}
}

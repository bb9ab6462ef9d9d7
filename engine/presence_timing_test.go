package engine

import (
	"strconv"
	"testing"
)

// fillPresence puts n synthetic members (one session each, n/2 users)
// into a presence room of e, through the shard's own join path.
func fillPresence(b *testing.B, e *Engine, room string, n int) *room {
	r, err := e.room(room)
	if err != nil {
		b.Fatal(err)
	}
	ls := &loopState{e: e}
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	for i := 0; i < n; i++ {
		s := &session{id: uint64(i + 1), ls: ls}
		r.presence.join(r.shard, exec{}, s, &cmdExtra{user: "u" + strconv.Itoa(i/2)})
	}
	return r
}

// BenchmarkPresenceStats: presence_stats costs the same in a room of 100
// and of 100,000 members (counters, not a count per query). "api" is
// Engine.PresenceStats (name check, policy match, lock); "answer" is the
// shard building the WebSocket answer envelope.
func BenchmarkPresenceStats(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		e, err := New(Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Rooms: []RoomPolicy{{Match: "p.*", Presence: true}}, PresenceCoalesceAbove: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		r := fillPresence(b, e, "p.big", n)
		if st, _ := e.PresenceStats("p.big"); st.Members != n || st.Users != (n+1)/2 {
			b.Fatalf("stats %+v", st)
		}
		b.Run("members="+strconv.Itoa(n)+"/api", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				st, _ := e.PresenceStats("p.big")
				if st.Members != n {
					b.Fatal(st)
				}
			}
		})
		b.Run("members="+strconv.Itoa(n)+"/counters", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r.shard.mu.Lock()
				st := r.presence.stats()
				r.shard.mu.Unlock()
				if st.Members != n {
					b.Fatal(st)
				}
			}
		})
	}
}

// BenchmarkPresencePage: one page of 100 members from the middle of a
// room of 100,000.
func BenchmarkPresencePage(b *testing.B) {
	e, err := New(Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Rooms: []RoomPolicy{{Match: "p.*", Presence: true}}, PresenceCoalesceAbove: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	fillPresence(b, e, "p.big", 100_000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		pg, _ := e.Presence("p.big", 50_000, 100)
		if len(pg.Members) != 100 {
			b.Fatal(len(pg.Members))
		}
	}
}

// BenchmarkPresenceLeave: an explicit leave from a room of 100,000
// members (removal from the join-ordered slice, O(members)), then the
// same member joining again at the end.
func BenchmarkPresenceLeave(b *testing.B) {
	e, err := New(Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Rooms: []RoomPolicy{{Match: "p.*", Presence: true}}, PresenceCoalesceAbove: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	r := fillPresence(b, e, "p.big", 100_000)
	sh := r.shard
	ls := &loopState{e: e}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := &session{id: uint64(200_000 + i), ls: ls}
		sh.mu.Lock()
		r.presence.join(sh, exec{}, s, &cmdExtra{user: "x"})
		r.presence.leave(sh, exec{}, s, true) // the last entry: no copy
		first := r.presence.entries[0].sess
		r.presence.leave(sh, exec{}, first, true) // the first: the whole slice moves
		r.presence.join(sh, exec{}, first, &cmdExtra{user: "u0"})
		sh.mu.Unlock()
	}
}

package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func presenceConfig(grace time.Duration, above int) func(*Config) {
	return func(c *Config) {
		c.Rooms = []RoomPolicy{{Match: "p.*", Presence: true}, {Match: "*"}}
		c.PresenceGrace = grace
		c.PresenceCoalesceAbove = above
		c.PresenceCoalesceInterval = 50 * time.Millisecond
	}
}

func join(c *client, room, user string) {
	c.t.Helper()
	c.send(map[string]any{"type": "join", "room": room, "user_id": user, "info": map[string]any{"app": user + "-app"}})
	c.expect("joined")
}

// expectQuiet checks that nothing but the pong comes before the pong.
func expectQuiet(c *client) {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	if m := c.read(); m["type"] != "pong" {
		c.t.Fatalf("got %v before the pong: want nothing", m)
	}
}

func TestPresenceNoticesInOrderWithMessages(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		e := startEngine(t, func(c *Config) { mutate(c); presenceConfig(time.Second, 1000)(c) })
		a := dial(t, e, false)
		join(a, "p.lobby", "ann")
		if m := a.expect("user_joined"); m["user_id"] != "ann" || m["room"] != "p.lobby" {
			t.Fatalf("own notice %v", m)
		}
		b := dial(t, e, false)
		// join then publish at once: ann sees the join first
		b.send(map[string]any{"type": "join", "room": "p.lobby", "user_id": "bob"})
		b.send(map[string]any{"type": "publish", "room": "p.lobby", "data": "hi"})
		if m := a.expect("user_joined"); m["user_id"] != "bob" || m["session"] == "" {
			t.Fatalf("%v", m)
		}
		if m := a.expect("message"); m["data"] != "hi" {
			t.Fatalf("%v", m)
		}
		// publish then leave: the message first
		b.send(map[string]any{"type": "publish", "room": "p.lobby", "data": "bye"})
		b.send(map[string]any{"type": "leave", "room": "p.lobby"})
		if m := a.expect("message"); m["data"] != "bye" {
			t.Fatalf("%v", m)
		}
		if m := a.expect("user_left"); m["user_id"] != "bob" {
			t.Fatalf("%v", m)
		}
		// a room without presence sends no notices
		join(a, "plain", "ann")
		expectQuiet(a)
	})
}

func TestPresenceNoFlappingOnQuickReconnect(t *testing.T) {
	e := startEngine(t, presenceConfig(400*time.Millisecond, 1000))
	a := dial(t, e, false)
	join(a, "p.room", "ann")
	a.expect("user_joined")
	b := dial(t, e, false)
	join(b, "p.room", "bob")
	a.expect("user_joined")
	b.ws.Close() // dropped, no leave
	time.Sleep(50 * time.Millisecond)
	b2 := dial(t, e, false)
	join(b2, "p.room", "bob") // back within the grace period
	time.Sleep(600 * time.Millisecond)
	expectQuiet(a) // no user_left, no user_joined
	if st, _ := e.PresenceStats("p.room"); st.Members != 2 || st.Users != 2 {
		t.Fatalf("stats %+v", st)
	}
	pg, _ := e.Presence("p.room", 0, 0)
	if len(pg.Members) != 2 || pg.Members[1].UserID != "bob" || pg.Members[1].Away {
		t.Fatalf("page %+v", pg)
	}
	b2.ws.Close() // dropped for good
	time.Sleep(100 * time.Millisecond)
	pg, _ = e.Presence("p.room", 0, 0)
	if !pg.Members[1].Away {
		t.Fatalf("bob should be away during grace: %+v", pg)
	}
	if m := a.expect("user_left"); m["user_id"] != "bob" {
		t.Fatalf("%v", m)
	}
	if st, _ := e.PresenceStats("p.room"); st.Members != 1 || st.Users != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPresenceCoalescesInBigRooms(t *testing.T) {
	e := startEngine(t, presenceConfig(time.Millisecond, 3))
	a := dial(t, e, false)
	join(a, "p.big", "watcher")
	a.expect("user_joined")
	var others []*client
	for i := 0; i < 10; i++ {
		c := dial(t, e, false)
		join(c, "p.big", fmt.Sprint("u", i))
		others = append(others, c)
	}
	single, batched, members := 0, 0, 0.0
	deadline := time.Now().Add(3 * time.Second)
	for single+batched < 10 && time.Now().Before(deadline) {
		m := a.read()
		switch m["type"] {
		case "user_joined":
			single++
		case "presence_batch":
			batched += int(num(m["joined"]))
			members = m["members"].(float64)
		}
	}
	// members 1..3 are announced one by one (ann + 2), the rest in batches
	if single != 2 || batched != 8 || members != 11 {
		t.Fatalf("single %d, batched %d, members %v", single, batched, members)
	}
	_ = others
}

func TestPresenceQueriesPaged(t *testing.T) {
	e := startEngine(t, presenceConfig(time.Millisecond, 1000))
	q := dial(t, e, false)
	for i := 0; i < 25; i++ {
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": "p.q", "user_id": fmt.Sprint("user", i%20)})
		c.expect("joined")
	}
	seen := map[string]bool{}
	cursor := 0.0
	pages := 0
	for {
		q.send(map[string]any{"type": "presence", "room": "p.q", "id": pages, "cursor": cursor, "limit": 10})
		m := q.expect("presence")
		if num(m["id"]) != uint64(pages) {
			t.Fatalf("id %v", m["id"])
		}
		pages++
		for _, x := range m["members"].([]any) {
			seen[x.(map[string]any)["session"].(string)] = true
		}
		next, ok := m["next"]
		if !ok {
			break
		}
		cursor = next.(float64)
	}
	if pages != 3 || len(seen) != 25 {
		t.Fatalf("%d pages, %d members", pages, len(seen))
	}
	q.send(map[string]any{"type": "presence_stats", "room": "p.q", "id": "s"})
	if m := q.expect("presence_stats"); num(m["members"]) != 25 || num(m["users"]) != 20 || m["id"] != "s" {
		t.Fatalf("%v", m)
	}
	// msgpack clients get the same answers in msgpack
	b, _ := msgpackMarshal(map[string]any{"type": "presence_stats", "room": "p.q"})
	q.sendRaw(websocket.BinaryMessage, b)
	if m := q.expect("presence_stats"); num(m["members"]) != 25 {
		t.Fatalf("%v", m)
	}
	// errors
	for _, c := range []struct {
		msg  map[string]any
		code string
	}{
		{map[string]any{"type": "presence", "room": "plain"}, CodePresenceOff},
		{map[string]any{"type": "join", "room": "p.q", "user_id": strings.Repeat("x", 300)}, CodeInvalidUserID},
		{map[string]any{"type": "join", "room": "p.q", "info": strings.Repeat("x", 2000)}, CodeInfoTooLarge},
	} {
		q.send(c.msg)
		if m := q.expect("error"); m["code"] != c.code {
			t.Fatalf("%v: %v", c.msg, m)
		}
	}
	if _, err := e.PresenceStats("plain"); err == nil {
		t.Fatal("PresenceStats of a room without presence worked")
	}
}

// TestPresenceCountsExactAfterChurn: thousands of joins and leaves, some
// as abrupt disconnects, from many connections at once; the counts match.
func TestPresenceCountsExactAfterChurn(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		e := startEngine(t, func(c *Config) { mutate(c); presenceConfig(time.Millisecond, 50)(c) })
		const clients, rounds = 60, 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		stayed := map[string]bool{}
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				user := fmt.Sprint("u", i%45)
				var c *websocket.Conn
				in := false
				for r := 0; r < rounds; r++ {
					if c == nil {
						var err error
						c, _, err = websocket.DefaultDialer.Dial("ws://"+e.Addr().String()+"/ws", nil)
						if err != nil {
							t.Error(err)
							return
						}
						in = false
					}
					switch op := rng.IntN(4); {
					case !in:
						_ = c.WriteJSON(map[string]any{"type": "join", "room": "p.churn", "user_id": user})
						in = true
					case op == 0:
						c.Close() // abrupt
						c = nil
					default:
						_ = c.WriteJSON(map[string]any{"type": "leave", "room": "p.churn"})
						in = false
					}
				}
				if c != nil {
					// make sure every command was handled: a ping answered after them
					_ = c.WriteJSON(map[string]any{"type": "ping"})
					for {
						_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
						_, b, err := c.ReadMessage()
						if err != nil {
							t.Error(err)
							return
						}
						if strings.Contains(string(b), `"pong"`) {
							break
						}
					}
					if in {
						mu.Lock()
						stayed[fmt.Sprint(i)] = true
						mu.Unlock()
					}
					t.Cleanup(func() { c.Close() })
				}
			}(i)
		}
		wg.Wait()
		want := len(stayed)
		users := map[string]bool{}
		for k := range stayed {
			var i int
			fmt.Sscan(k, &i)
			users[fmt.Sprint("u", i%45)] = true
		}
		deadline := time.Now().Add(3 * time.Second)
		var st PresenceStats
		for time.Now().Before(deadline) {
			st, _ = e.PresenceStats("p.churn")
			if st.Members == want && st.Users == len(users) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if st.Members != want || st.Users != len(users) {
			t.Fatalf("stats %+v, want %d members, %d users", st, want, len(users))
		}
		pg, _ := e.Presence("p.churn", 0, MaxPresencePage)
		if len(pg.Members) != want {
			t.Fatalf("page has %d members, want %d", len(pg.Members), want)
		}
	})
}

package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEraseRemovesEverythingOfOneUser: Erase deletes what one
// authenticated user published (durable log and in-memory history, seqs
// kept, replayed as null), the user's consumer position, and the
// pipeline records held under the user as key (state sink, session), says
// so, and leaves another user's data alone.
func TestEraseRemovesEverythingOfOneUser(t *testing.T) {
	dir := t.TempDir()
	src := `
- name: profile
  input: {stream: clicks}
  edges: ["input -> last", "input -> visit", "visit -> output"]
  output: {room: visits}
  nodes:
    - {name: last, op: state, key: "data.user"}
    - {name: visit, op: session, key: "data.user", duration: 1h}
`
	e := startEngine(t, func(c *Config) {
		durableConfig(dir)(c)
		hmacAuth(c)
		c.Auth.Anonymous = true
		c.Pipelines = specs(t, src)
	})
	ann := dialToken(t, e, hs(t, claims("ann", time.Hour, nil)))
	bob := dialToken(t, e, hs(t, claims("bob", time.Hour, nil)))
	for user, c := range map[string]*client{"ann": ann, "bob": bob} {
		c.send(map[string]any{"type": "join", "room": "d.room", "user_id": user})
		c.expect("joined")
	}
	pub := func(c *client, room, text string) { // one at a time: the seqs are known
		c.send(map[string]any{"type": "publish", "room": room, "id": text, "data": map[string]any{"text": text}})
		for c.read()["type"] != "ack" {
		}
	}
	pub(ann, "d.room", "a1")
	pub(bob, "d.room", "b1")
	pub(ann, "d.room", "a2")
	pub(ann, "chat", "a3")
	pub(bob, "chat", "b2")
	ann.send(map[string]any{"type": "ack", "room": "d.room", "seq": 3})
	for _, d := range []string{`{"user":"ann","n":1}`, `{"user":"bob","n":2}`} {
		if err := e.Ingest(context.Background(), "clicks", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the state sink and the position", func() bool {
		ents, err := e.State("profile", "ann", "", 0)
		return err == nil && len(ents) == 1 && e.positionOf("d.room", "ann") == 3
	})

	rep, err := e.Erase(context.Background(), "ann")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	t.Logf("report: %s", b)
	if rep.Messages["d.room"] != 2 || rep.Messages["chat"] != 1 || len(rep.Messages) != 2 {
		t.Errorf("messages erased: %v, want d.room 2, chat 1", rep.Messages)
	}
	if !slices.Equal(rep.Positions, []string{"d.room"}) {
		t.Errorf("positions erased: %v", rep.Positions)
	}
	var kinds []string
	for _, s := range rep.State {
		if s.Key != "ann" || s.Pipeline != "profile" {
			t.Errorf("state erased: %+v", s)
		}
		kinds = append(kinds, s.Kind+":"+s.Node)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"session:visit", "state:last"}) {
		t.Errorf("records erased: %v", kinds)
	}
	if _, err := e.State("profile", "ann", "", 0); err == nil {
		t.Error("ann's state record is still there")
	}
	if ents, err := e.State("profile", "bob", "", 0); err != nil || len(ents) != 1 {
		t.Errorf("bob's state record: %v %v", ents, err)
	}
	if p := e.positionOf("d.room", "ann"); p != 0 {
		t.Errorf("ann's position is still %d", p)
	}

	// Replays: ann's messages are null, in their places; bob's are whole.
	replay := func(room string, history int) []string {
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": room, "since": 0})
		c.expect("joined")
		var got []string
		for range history {
			m := c.expect("message")
			b, _ := json.Marshal(m["data"])
			got = append(got, string(b))
		}
		c.ws.Close()
		return got
	}
	if got := replay("d.room", 3); strings.Join(got, " ") != `null {"text":"b1"} null` {
		t.Errorf("d.room replays %v", got)
	}
	if got := replay("chat", 2); strings.Join(got, " ") != `null {"text":"b2"}` {
		t.Errorf("chat replays %v", got)
	}
	// The log on disk too: a restart replays the same.
	ann.ws.Close()
	bob.ws.Close()
	stopEngine(t, e)
	e2 := startEngine(t, func(c *Config) {
		durableConfig(dir)(c)
		c.Pipelines = specs(t, src)
	})
	c := dial(t, e2, false)
	c.send(map[string]any{"type": "join", "room": "d.room", "since": 0})
	c.expect("joined")
	var got []string
	for range 3 {
		m := c.expect("message")
		b, _ := json.Marshal(m["data"])
		got = append(got, string(b))
	}
	if strings.Join(got, " ") != `null {"text":"b1"} null` {
		t.Errorf("after a restart, d.room replays %v", got)
	}
	if _, err := e2.Erase(context.Background(), ""); err == nil {
		t.Error("an empty subject was accepted")
	}
}

// positionOf is user's recorded position in a room in memory (0: none).
func (e *Engine) positionOf(name, user string) uint64 {
	v, ok := e.rooms.Load(name)
	if !ok {
		return 0
	}
	r := v.(*room)
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	return r.positions[user]
}

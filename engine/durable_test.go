package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"streamd/state"
)

func durableConfig(dir string) func(*Config) {
	return func(c *Config) {
		c.Data = dir
		c.Rooms = []RoomPolicy{{Match: "d.*", Durable: true, History: -1}, {Match: "*"}}
	}
}

// TestDurableRoomSurvivesRestart: acknowledged messages of a durable room
// are on disk: a new engine on the same data directory replays them to a
// `join … since 0` and continues the seq.
func TestDurableRoomSurvivesRestart(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		dir := t.TempDir()
		cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, HeartbeatInterval: 5 * time.Second}
		mutate(&cfg)
		durableConfig(dir)(&cfg)
		e := startCfg(t, cfg)
		c := dial(t, e, false)
		c.send(map[string]any{"type": "join", "room": "d.orders"})
		c.expect("joined")
		const n = 50
		for i := 1; i <= n; i++ {
			c.send(map[string]any{"type": "publish", "room": "d.orders", "id": i, "data": map[string]any{"n": i}})
			ack := c.expect("ack")
			if num(ack["seq"]) != uint64(i) || num(ack["id"]) != uint64(i) {
				t.Fatalf("ack %v", ack)
			}
			if m := c.expect("message"); num(m["seq"]) != uint64(i) {
				t.Fatalf("message %v", m)
			}
		}
		c.ws.Close() // gone before the engine closes (Close would wait for it)
		stopEngine(t, e)

		e2 := startCfg(t, cfg)
		c2 := dial(t, e2, false)
		c2.send(map[string]any{"type": "join", "room": "d.orders", "since": 0})
		j := c2.expect("joined")
		if num(j["seq"]) != n || j["recovered"] != true {
			t.Fatalf("joined %v", j)
		}
		for i := 1; i <= n; i++ {
			m := c2.expect("message")
			if num(m["seq"]) != uint64(i) || num(m["data"].(map[string]any)["n"]) != uint64(i) {
				t.Fatalf("replay %d: %v", i, m)
			}
		}
		c2.send(map[string]any{"type": "publish", "room": "d.orders", "id": "x", "data": "next"})
		if ack := c2.expect("ack"); num(ack["seq"]) != n+1 {
			t.Fatalf("seq after restart: %v", ack)
		}
	})
}

// TestDurableJoinSinceReadsTheLogAndRetention: with no memory history,
// since is served from the log; once trimmed, recovered is false.
func TestDurableJoinSinceReadsTheLogAndRetention(t *testing.T) {
	e := startEngine(t, durableConfig("")) // in-memory store
	c := dial(t, e, false)
	for i := 1; i <= 20; i++ {
		c.send(map[string]any{"type": "publish", "room": "d.x", "id": i, "data": i})
		c.expect("ack")
	}
	c.send(map[string]any{"type": "join", "room": "d.x", "since": 15})
	if j := c.expect("joined"); num(j["seq"]) != 20 || j["recovered"] != true {
		t.Fatalf("%v", j)
	}
	for i := 16; i <= 20; i++ {
		if m := c.expect("message"); num(m["seq"]) != uint64(i) {
			t.Fatalf("%v", m)
		}
	}
	if _, err := e.roomLog.Trim("d.x", state.Retention{MaxCount: 5}); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, e, false)
	c2.send(map[string]any{"type": "join", "room": "d.x", "since": 3})
	if j := c2.expect("joined"); j["recovered"] != false {
		t.Fatalf("after trimming: %v", j)
	}
	for i := 16; i <= 20; i++ {
		if m := c2.expect("message"); num(m["seq"]) != uint64(i) {
			t.Fatalf("what is left: %v", m)
		}
	}
}

// TestExactlyOncePublishSurvivesRestart: resends of a producer's publish
// are answered as duplicates, not published again, also after a restart.
func TestExactlyOncePublishSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, HeartbeatInterval: 5 * time.Second}
	durableConfig(dir)(&cfg)
	e := startCfg(t, cfg)
	c := dial(t, e, false)
	pub := func(c *client, pseq int) map[string]any {
		c.send(map[string]any{"type": "publish", "room": "d.once", "id": pseq, "producer": "p1", "pseq": pseq, "data": pseq})
		return c.expect("ack")
	}
	for i := 1; i <= 3; i++ {
		if a := pub(c, i); num(a["seq"]) != uint64(i) || a["duplicate"] != nil {
			t.Fatalf("%v", a)
		}
	}
	if a := pub(c, 3); a["duplicate"] != true || num(a["seq"]) != 3 {
		t.Fatalf("resend of the last: %v", a)
	}
	if a := pub(c, 2); a["duplicate"] != true {
		t.Fatalf("resend of an older one: %v", a)
	}
	// a plain publish (no producer) is never deduplicated
	c.send(map[string]any{"type": "publish", "room": "d.once", "id": "plain", "data": 0})
	if a := c.expect("ack"); num(a["seq"]) != 4 {
		t.Fatalf("%v", a)
	}
	c.ws.Close()
	stopEngine(t, e)

	e2 := startCfg(t, cfg)
	c2 := dial(t, e2, false)
	if a := pub(c2, 3); a["duplicate"] != true || num(a["seq"]) != 3 {
		t.Fatalf("resend after the restart: %v", a)
	}
	if a := pub(c2, 4); a["duplicate"] != nil || num(a["seq"]) != 5 {
		t.Fatalf("next after the restart: %v", a)
	}
	if st := e2.Stats(); st.Published != 1 {
		t.Fatalf("published %d after the restart, want 1", st.Published)
	}
}

// TestAckedPositionResumesAfterReconnectAndRestart: a member that acks
// gets, on its next join (no since), exactly what it did not ack, also
// after the engine restarted.
func TestAckedPositionResumesAfterReconnectAndRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, HeartbeatInterval: 5 * time.Second}
	durableConfig(dir)(&cfg)
	e := startCfg(t, cfg)
	c := dial(t, e, false)
	c.send(map[string]any{"type": "join", "room": "d.q", "user_id": "worker-1"})
	c.expect("joined")
	for i := 1; i <= 10; i++ {
		c.send(map[string]any{"type": "publish", "room": "d.q", "data": i})
		c.expect("message")
	}
	c.send(map[string]any{"type": "ack", "room": "d.q", "seq": 6}) // processed up to 6
	c.send(map[string]any{"type": "ping"})
	c.expect("pong")
	c.ws.Close()
	time.Sleep(100 * time.Millisecond) // the ack's position reaches the store
	stopEngine(t, e)

	e2 := startCfg(t, cfg)
	c2 := dial(t, e2, false)
	c2.send(map[string]any{"type": "join", "room": "d.q", "user_id": "worker-1"})
	if j := c2.expect("joined"); j["recovered"] != true || num(j["seq"]) != 10 {
		t.Fatalf("resume join %v", j)
	}
	for i := 7; i <= 10; i++ {
		if m := c2.expect("message"); num(m["seq"]) != uint64(i) {
			t.Fatalf("resume: %v, want seq %d", m, i)
		}
	}
	// another user has no position: it joins live
	c3 := dial(t, e2, false)
	c3.send(map[string]any{"type": "join", "room": "d.q", "user_id": "worker-2"})
	if j := c3.expect("joined"); j["recovered"] != nil {
		t.Fatalf("a user without a position: %v", j)
	}
	expectQuiet(c3)
}

// TestSessionStateSurvivesRestart: a pipeline's session op keeps its
// sessions in the store: one opened before a restart expires after it.
func TestSessionStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	specsSrc := `
- name: visits
  input: {stream: clicks}
  edges: ["input -> visit", "visit -> output", "visit.expired -> ended"]
  nodes:
    - {name: visit, op: session, key: "data.user", duration: 1500ms}
    - {name: ended, op: room, room: ended}
  output: {room: seen}
`
	cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Data: dir, Pipelines: specs(t, specsSrc)}
	e := startCfg(t, cfg)
	if e.store == nil {
		t.Fatal("a session op did not open the store")
	}
	if err := e.Ingest(context.Background(), "clicks", []byte(`{"user":"ann"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // through the pipeline and its batcher
	stopEngine(t, e)

	e2 := startCfg(t, Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Data: dir, Pipelines: specs(t, specsSrc)})
	got := make(chan string, 4)
	stop, _ := e2.Subscribe("ended", func(m *Message) { got <- string(m.Data()) })
	defer stop()
	select {
	case d := <-got:
		if !strings.Contains(d, `"type":"session_expired","key":"ann"`) || !strings.Contains(d, `"data":{"user":"ann"}`) {
			t.Fatalf("expired: %s", d)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("the session opened before the restart never expired")
	}
}

// TestStateSinkSurvivesRestart: a pipeline's state sink writes durably;
// the value is read back after a restart.
func TestStateSinkSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	src := `
- name: prices
  input: {stream: ticks}
  nodes:
    - {name: last, op: state, key: "data.symbol", to: "{'price': data.price}"}
`
	e := startCfg(t, Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Data: dir, Pipelines: specs(t, src)})
	for _, d := range []string{`{"symbol":"A","price":1}`, `{"symbol":"B","price":2}`, `{"symbol":"A","price":3}`} {
		if err := e.Ingest(context.Background(), "ticks", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, err := e.State("prices", "A", "", 0)
		if err == nil && len(ents) == 1 && string(ents[0].Value) == `{"price":3}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state A: %v %v", ents, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopEngine(t, e)
	e2 := startCfg(t, Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Data: dir, Pipelines: specs(t, src)})
	ents, err := e2.State("prices", "", "", 0)
	if err != nil || len(ents) != 2 || ents[0].Key != "A" || string(ents[1].Value) != `{"price":2}` {
		t.Fatalf("after restart: %+v %v", ents, err)
	}
	if _, err := e2.State("prices", "Z", "", 0); err == nil {
		t.Fatal("a missing key was found")
	}
}

// startCfg builds and starts an engine from cfg exactly (startEngine adds
// defaults; restart tests need the same cfg twice) and closes it when t ends.
func startCfg(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// stopEngine closes e within 5 s (before a restart on the same data).
func stopEngine(t testing.TB, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

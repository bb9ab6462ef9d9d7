package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ckSpecs is a checkpointing pipeline: per-key event-time counts over
// 10 s windows, written to the state sink (key "K@START") and published
// into the durable room d.totals.
const ckSpecs = `
- name: counts
  checkpoint: 20ms
  input: {stream: ev}
  edges: ["input -> agg", "agg -> st", "agg -> totals"]
  nodes:
    - {name: agg, op: aggregate, key: "data.k", fn: [count, sum], field: "data.v", time: "data.t", window: {tumbling: 10s}}
    - {name: st, op: state, key: "data.key + '@' + string(data.start)"}
    - {name: totals, op: room, room: d.totals}
`

func ckConfig(t *testing.T, dir string) Config {
	cfg := Config{Listen: "127.0.0.1:0", Auth: AuthConfig{Anonymous: true}, Data: dir, HeartbeatInterval: 5 * time.Second, Pipelines: specs(t, ckSpecs)}
	durableConfig(dir)(&cfg)
	return cfg
}

// ckSend sends an exactly-once event and returns its id.
func ckSend(c *client, producer string, pseq int, k string, tSec int, v int) string {
	id := fmt.Sprintf("%s-%d", producer, pseq)
	c.send(map[string]any{"type": "event", "stream": "ev", "id": id, "producer": producer, "pseq": pseq,
		"data": map[string]any{"k": k, "t": int64(tSec) * 1000, "v": v}})
	return id
}

// TestCheckpointWindowsResumeExactlyOnce: events are acknowledged only
// once a checkpoint holds them; a resend is a duplicate; the open windows
// survive a restart, so a window that straddles it counts every event
// once; its result reaches the state sink and the durable room once.
func TestCheckpointWindowsResumeExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	e := startCfg(t, ckConfig(t, dir))
	if e.store == nil {
		t.Fatal("a checkpointing pipeline did not open the store")
	}
	c := dial(t, e, false)
	acked := map[string]bool{}
	for i := 1; i <= 5; i++ {
		ckSend(c, "p1", i, "a", 1, i) // window [0,10s) of a: 5 events, sum 15
	}
	ckSend(c, "p1", 3, "a", 1, 100) // a resend: not counted
	dups := 0
	for len(acked) < 5 || dups < 1 {
		m := c.expect("ack")
		if m["stream"] != "ev" {
			t.Fatalf("ack: %v", m)
		}
		if m["duplicate"] == true {
			dups++
			if m["id"] != "p1-3" {
				t.Fatalf("duplicate ack: %v", m)
			}
			continue
		}
		acked[m["id"].(string)] = true
	}
	c.ws.Close()
	stopEngine(t, e) // a last checkpoint; the window stays open

	e2 := startCfg(t, ckConfig(t, dir))
	c2 := dial(t, e2, false)
	c2.send(map[string]any{"type": "join", "room": "d.totals"})
	c2.expect("joined")
	ckSend(c2, "p1", 5, "a", 2, 1000) // still a duplicate after the restart
	if m := c2.expect("ack"); m["duplicate"] != true {
		t.Fatalf("a resend after the restart: %v", m)
	}
	ckSend(c2, "p1", 6, "a", 3, 6)  // the same window: 6 events, sum 21
	ckSend(c2, "p1", 7, "b", 25, 1) // the watermark passes 10 s: [0,10) fires
	for range 2 {
		c2.expect("ack")
	}
	m := c2.expect("message")
	data := fmt.Sprint(m["data"])
	if !strings.Contains(data, "key:a") || !strings.Contains(data, "count:6") || !strings.Contains(data, "sum:21") {
		t.Fatalf("window result: %s", data)
	}
	waitFor(t, "the state sink's write", func() bool {
		ents, err := e2.State("counts", "a@0", "", 0)
		return err == nil && len(ents) == 1 && strings.Contains(string(ents[0].Value), `"count":6`)
	})
	c2.ws.Close()
	stopEngine(t, e2)

	// Another restart publishes nothing twice into the durable room.
	e3 := startCfg(t, ckConfig(t, dir))
	c3 := dial(t, e3, false)
	c3.send(map[string]any{"type": "join", "room": "d.totals", "since": 0})
	c3.expect("joined")
	got := 0
	_ = c3.ws.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	for {
		_, b, err := c3.ws.ReadMessage()
		if err != nil {
			break // the deadline: nothing more came
		}
		if strings.Contains(string(b), `"type":"message"`) {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("d.totals holds %d results, want 1", got)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
)

// TestEncodingSwitchAnswerID: a client that sends a JSON request with an id
// and, before the answer, a msgpack frame gets its answer (ack, joined,
// left) in msgpack, as the protocol says, with the id transcoded (and the
// other way round). The browser test found the engine once pasted the raw
// JSON id into the msgpack answer.
func TestEncodingSwitchAnswerID(t *testing.T) {
	const rounds = 100
	modes(t, func(t *testing.T, mode string) {
		ctx := deadline(t)
		_, url := startEngine(t, mode)
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		read := func() (map[string]any, string) {
			t.Helper()
			typ, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var m map[string]any
			if typ == websocket.MessageBinary {
				err = msgpack.Unmarshal(b, &m)
			} else {
				err = json.Unmarshal(b, &m)
			}
			raw := fmt.Sprintf("%s frame %q", typ, b)
			if err != nil {
				t.Fatalf("undecodable %s: %v", raw, err)
			}
			return m, raw
		}
		if m, raw := read(); m["type"] != "welcome" {
			t.Fatalf("first frame %s", raw)
		}
		for i := range rounds {
			textID, binID := fmt.Sprintf("t-%d", i), fmt.Sprintf("b-%d", i)
			b, _ := json.Marshal(map[string]any{"type": "publish", "room": "switch", "id": textID, "data": i})
			if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
				t.Fatal(err)
			}
			b, _ = msgpack.Marshal(map[string]any{"type": "publish", "room": "switch", "id": binID, "data": i})
			if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
				t.Fatal(err)
			}
			for got := 0; got < 2; {
				m, raw := read()
				switch m["type"] {
				case "ack":
					if m["id"] != textID && m["id"] != binID {
						t.Fatalf("round %d: ack with id %#v, want %q or %q: %s", i, m["id"], textID, binID, raw)
					}
					got++
				case "error":
					t.Fatalf("round %d: %s", i, raw)
				}
			}
		}
	})
}

package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// TestBackupWhileRunningAndRestore: a backup taken over the admin port
// from a running engine restores into a new directory on which a new
// engine replays the durable room.
func TestBackupWhileRunningAndRestore(t *testing.T) {
	rooms := []engine.RoomPolicy{{Match: "d.*", Durable: true}}
	eng := enginetest.Start(t, engine.Config{Data: filepath.Join(t.TempDir(), "data"), Rooms: rooms})
	srv := httptest.NewServer((&adminServer{}).mux(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial(enginetest.URL(eng), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = ws.ReadMessage()
	for i := 1; i <= 5; i++ {
		_ = ws.WriteJSON(map[string]any{"type": "publish", "room": "d.b", "id": i, "data": i})
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil { // the ack: on disk
			t.Fatal(err)
		}
	}
	ws.Close()
	out := filepath.Join(t.TempDir(), "b.backup")
	code, stdout, errOut := runCLI(t, "backup", "--admin", strings.TrimPrefix(srv.URL, "http://"), "--out", out)
	if code != 0 || !strings.Contains(stdout, "backup written") {
		t.Fatalf("backup: %d %s %s", code, stdout, errOut)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, stdout, errOut := runCLI(t, "restore", "--data", restored, "--in", out); code != 0 {
		t.Fatalf("restore: %d %s %s", code, stdout, errOut)
	}
	if code, _, errOut := runCLI(t, "restore", "--data", restored, "--in", out); code != exitFail || !strings.Contains(errOut, "not empty") {
		t.Fatalf("restore into a used directory: %d %s", code, errOut)
	}
	e2 := enginetest.Start(t, engine.Config{Data: restored, Rooms: rooms})
	got := make(chan uint64, 16)
	stop, _ := e2.Subscribe("d.b", func(m *engine.Message) { got <- m.Seq() })
	defer stop()
	if _, err := e2.Publish("d.b", []byte(`"after"`)); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-got:
		if seq != 6 {
			t.Fatalf("first seq on the restored store: %d, want 6", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published on the restored store")
	}
}

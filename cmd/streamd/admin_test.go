package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// TestAdminReportsEngine embeds an engine the way README.md shows, uses it
// through Publish and Subscribe, and checks that /metrics and /stats report
// what happened.
func TestAdminReportsEngine(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(engine.Config{Listen: "127.0.0.1:0", Logger: logger, Auth: engine.AuthConfig{Anonymous: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Close(ctx)
	}()
	got := make(chan string, 1)
	stop, err := eng.Subscribe("orders.new", func(m *engine.Message) {
		got <- m.Room() + " " + string(m.Data()) // m is valid only during the call
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	seq, err := eng.Publish("orders.new", []byte(`{"id":42}`))
	if err != nil || seq != 1 {
		t.Fatalf("Publish = %d, %v", seq, err)
	}
	select {
	case s := <-got:
		if s != `orders.new {"id":42}` {
			t.Errorf("subscriber got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber got nothing")
	}

	a := &adminServer{}
	srv := httptest.NewServer(a.mux(eng, logger, nil))
	defer srv.Close()
	_, body := httpGet(t, srv.URL+"/metrics")
	for _, want := range []string{
		"# TYPE streamd_connections gauge\nstreamd_connections 0\n",
		"# TYPE streamd_rooms gauge\nstreamd_rooms 1\n",
		"# TYPE streamd_messages_published_total counter\nstreamd_messages_published_total 1\n",
		"# HELP streamd_slow_consumer_drops_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, body = httpGet(t, srv.URL+"/stats")
	var st engine.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Rooms != 1 || st.Published != 1 {
		t.Errorf("/stats = %s (%v)", body, err)
	}
	a.draining.Store(true)
	if code, _ := httpGet(t, srv.URL+"/healthz"); code != 503 {
		t.Errorf("/healthz while draining = %d, want 503", code)
	}
}

func TestAdminPresence(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{Rooms: []engine.RoomPolicy{{Match: "p.*", Presence: true}}})
	a := &adminServer{}
	srv := httptest.NewServer(a.mux(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial(enginetest.URL(eng), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]any{"type": "join", "room": "p.a", "user_id": "ann", "info": map[string]any{"v": 1}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := httpGet(t, srv.URL+"/presence/stats?room=p.a")
		if code == 200 && strings.Contains(body, `"members": 1`) && strings.Contains(body, `"users": 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/presence/stats: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := httpGet(t, srv.URL+"/presence?room=p.a&limit=10"); code != 200 || !strings.Contains(body, `"user_id": "ann"`) || !strings.Contains(body, `"v": 1`) {
		t.Fatalf("/presence: %d %s", code, body)
	}
	if code, _ := httpGet(t, srv.URL+"/presence?room=other"); code != 404 {
		t.Fatalf("/presence of a room without presence: %d, want 404", code)
	}
	if code, _ := httpGet(t, srv.URL+"/presence?room=p.a&limit=x"); code != 400 {
		t.Fatalf("bad limit: %d, want 400", code)
	}
}

// TestAdminErase: POST /erase?subject=S answers what it erased as JSON;
// no subject is a 400.
func TestAdminErase(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{})
	var a adminServer
	srv := httptest.NewServer(a.mux(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/erase?subject=ann", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep engine.EraseReport
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || rep.Subject != "ann" || rep.Messages == nil || rep.State == nil {
		t.Fatalf("erase: %d %+v %v", resp.StatusCode, rep, err)
	}
	resp, err = http.Post(srv.URL+"/erase", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("erase without a subject: %d", resp.StatusCode)
	}
}

// Command nbio is a reference server for bench/compare.sh built on
// github.com/lesismal/nbio v1.6.8, the way nbio's websocket examples do it: an
// nbhttp.Engine (non-blocking epoll pollers, default IOMod) serving a
// net/http mux, websocket.Upgrader with OnOpen/OnMessage/OnClose callbacks. It
// speaks the streamd protocol subset in bench/peers/internal/wire.
//
// Broadcast: under the room's mutex, OnMessage increments the seq, encodes the
// message JSON once and calls Conn.WriteMessage with the same bytes for every
// member. nbio's writes are non-blocking (what the socket does not take is
// buffered by the engine), so the loop never waits on a slow member; nbio
// builds the frame (2-byte header plus a copy of the payload) per connection.
package main

import (
	"flag"
	"log"
	"net/http"
	"sync"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"streamd/bench/peers/internal/wire"
)

type room struct {
	mu      sync.Mutex
	quoted  []byte
	seq     uint64
	members map[*websocket.Conn]struct{}
}

// session is a connection's state, kept with Conn.SetSession.
type session struct {
	mu    sync.Mutex
	rooms []*room
}

type server struct {
	mu    sync.Mutex
	rooms map[string]*room
}

func (s *server) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[name]
	if rm == nil {
		rm = &room{quoted: wire.Quote(name), members: map[*websocket.Conn]struct{}{}}
		s.rooms[name] = rm
	}
	return rm
}

func (s *server) onMessage(c *websocket.Conn, typ websocket.MessageType, data []byte) {
	if typ != websocket.TextMessage {
		return
	}
	in, err := wire.Parse(data)
	if err != nil {
		return
	}
	switch in.Type {
	case "join":
		rm := s.room(in.Room)
		sess := c.Session().(*session)
		rm.mu.Lock()
		if _, ok := rm.members[c]; !ok {
			rm.members[c] = struct{}{}
			sess.mu.Lock()
			sess.rooms = append(sess.rooms, rm)
			sess.mu.Unlock()
		}
		c.WriteMessage(websocket.TextMessage, wire.AppendJoined(nil, rm.quoted, rm.seq))
		rm.mu.Unlock()
	case "publish":
		rm := s.room(in.Room)
		rm.mu.Lock()
		rm.seq++
		msg := wire.AppendMessage(nil, rm.quoted, rm.seq, in.Data)
		for m := range rm.members {
			m.WriteMessage(websocket.TextMessage, msg)
		}
		rm.mu.Unlock()
	case "ping":
		c.WriteMessage(websocket.TextMessage, wire.Pong)
	}
}

func (s *server) onClose(c *websocket.Conn, _ error) {
	sess, ok := c.Session().(*session)
	if !ok {
		return
	}
	sess.mu.Lock()
	rooms := sess.rooms
	sess.rooms = nil
	sess.mu.Unlock()
	for _, rm := range rooms {
		rm.mu.Lock()
		delete(rm.members, c)
		rm.mu.Unlock()
	}
}

// start runs the server on addr; stop shuts it down.
func start(addr string) (stop func(), err error) {
	s := &server{rooms: map[string]*room{}}
	u := websocket.NewUpgrader()
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnOpen(func(c *websocket.Conn) {
		c.SetSession(&session{})
		c.WriteMessage(websocket.TextMessage, wire.Welcome)
	})
	u.OnMessage(s.onMessage)
	u.OnClose(s.onClose)

	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if _, err := u.Upgrade(w, r, nil); err != nil {
			return
		}
	})
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{addr},
		MaxLoad:                 1 << 20,
		ReleaseWebsocketPayload: true,
		Handler:                 mux,
	})
	if err := engine.Start(); err != nil {
		return nil, err
	}
	return engine.Stop, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to listen on (endpoint /ws)")
	flag.Parse()
	if _, err := start(*listen); err != nil {
		log.Fatal(err)
	}
	log.Printf("nbio listening ws://%s/ws", *listen)
	select {}
}

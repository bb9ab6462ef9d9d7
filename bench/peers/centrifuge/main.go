// Command centrifuge is a reference server for bench/compare.sh built on
// github.com/centrifugal/centrifuge v0.40.1 (in-memory broker, no history).
// Centrifuge speaks its own client protocol, so this adapter speaks the
// streamd protocol subset (bench/peers/internal/wire) and uses a Node for
// rooms and broadcast: it accepts WebSocket connections with
// gorilla/websocket v1.5.3 (centrifuge's own WebSocket transport is a fork of
// it), wraps each in a unidirectional JSON centrifuge.Transport, creates a
// centrifuge.Client with NewClient and Connect, maps join to a server-side
// Client.Subscribe and publish to Node.Publish.
//
// Broadcast: the adapter increments the room's seq (centrifuge has no
// sequence without history), encodes the streamd message once and publishes
// it as the publication data. Node.Publish goes through the memory broker to
// the hub, which encodes the push once per protocol and enqueues the same
// bytes to each subscriber's writer queue; each client's writer goroutine
// calls the transport's WriteMany, which slices the streamd message out of
// centrifuge's {"channel":..,"pub":{"data":..}} push (no copy) and writes it
// as its own text frame. Centrifuge's WebSocket transport would instead join
// queued pushes into one frame with newlines; one message per frame is the
// streamd protocol, so that batching is lost here.
package main

import (
	"bytes"
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"sync"

	"github.com/centrifugal/centrifuge"
	"github.com/gorilla/websocket"

	"streamd/bench/peers/internal/wire"
)

// transport hands centrifuge's publication pushes to a gorilla connection; the
// adapter's own replies go through write as well, under the same mutex.
type transport struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (t *transport) Name() string                                { return "streamd-websocket" }
func (t *transport) AcceptProtocol() string                      { return "h1" }
func (t *transport) Protocol() centrifuge.ProtocolType           { return centrifuge.ProtocolTypeJSON }
func (t *transport) ProtocolVersion() centrifuge.ProtocolVersion { return centrifuge.ProtocolVersion2 }
func (t *transport) Unidirectional() bool                        { return true }
func (t *transport) Emulation() bool                             { return false }
func (t *transport) Close(centrifuge.Disconnect) error           { return t.conn.Close() }
func (t *transport) Write(push []byte) error                     { return t.WriteMany(push) }
func (t *transport) PingPongConfig() centrifuge.PingPongConfig {
	return centrifuge.PingPongConfig{PingInterval: -1, PongTimeout: -1}
}

// DisabledPushFlags leaves publications only: connect, subscribe, join and
// the rest have no streamd counterpart.
func (t *transport) DisabledPushFlags() uint64 { return ^centrifuge.PushFlagPublication }

var pubPrefix = []byte(`,"pub":{"data":`)

// WriteMany writes each publication's data, a whole streamd message, as one
// text frame.
func (t *transport) WriteMany(pushes ...[]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range pushes {
		i := bytes.Index(p, pubPrefix)
		if i < 0 || !bytes.HasSuffix(p, []byte("}}")) {
			continue // not a bare publication push
		}
		if err := t.conn.WriteMessage(websocket.TextMessage, p[i+len(pubPrefix):len(p)-2]); err != nil {
			return err
		}
	}
	return nil
}

func (t *transport) write(msg []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn.WriteMessage(websocket.TextMessage, msg)
}

type room struct {
	mu     sync.Mutex // orders seq with Publish, and joined with the subscription
	quoted []byte
	seq    uint64
}

type server struct {
	node  *centrifuge.Node
	mu    sync.Mutex
	rooms map[string]*room
}

func (s *server) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[name]
	if rm == nil {
		rm = &room{quoted: wire.Quote(name)}
		s.rooms[name] = rm
	}
	return rm
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	t := &transport{conn: conn}
	ctx := centrifuge.SetCredentials(context.Background(), &centrifuge.Credentials{})
	client, closeFn, err := centrifuge.NewClient(ctx, s.node, t)
	if err != nil {
		return
	}
	defer closeFn()
	if err := client.ConnectNoErrorToDisconnect(centrifuge.ConnectRequest{}); err != nil {
		return
	}
	if t.write(wire.Welcome) != nil {
		return
	}
	conn.SetReadLimit(1 << 16)
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		in, err := wire.Parse(msg)
		if err != nil {
			continue
		}
		switch in.Type {
		case "join":
			rm := s.room(in.Room)
			rm.mu.Lock()
			err := client.Subscribe(in.Room)
			if err == nil || err == centrifuge.ErrorAlreadySubscribed {
				err = t.write(wire.AppendJoined(nil, rm.quoted, rm.seq))
			}
			rm.mu.Unlock()
			if err != nil {
				return
			}
		case "publish":
			rm := s.room(in.Room)
			rm.mu.Lock()
			rm.seq++
			_, err := s.node.Publish(in.Room, wire.AppendMessage(nil, rm.quoted, rm.seq, in.Data))
			rm.mu.Unlock()
			if err != nil {
				return
			}
		case "ping":
			if t.write(wire.Pong) != nil {
				return
			}
		}
	}
}

// serve runs a Node and the server on ln until ln is closed.
func serve(ln net.Listener) error {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return err
	}
	node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{}}, nil
	})
	node.OnConnect(func(*centrifuge.Client) {})
	if err := node.Run(); err != nil {
		return err
	}
	defer node.Shutdown(context.Background())
	s := &server{node: node, rooms: map[string]*room{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	return http.Serve(ln, mux)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to listen on (endpoint /ws)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("centrifuge listening ws://%s/ws", ln.Addr())
	log.Fatal(serve(ln))
}

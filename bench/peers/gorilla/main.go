// Command gorilla is a reference server for bench/compare.sh built on
// github.com/gorilla/websocket v1.5.3 and net/http, shaped like gorilla's chat
// example: one hub goroutine owns the rooms, each connection has a read
// goroutine and a write goroutine fed by a buffered send channel (256), and a
// client whose channel is full is dropped. It speaks the streamd protocol
// subset in bench/peers/internal/wire.
//
// Broadcast: the hub increments the room's seq, encodes the message JSON once
// and puts the same byte slice on every member's send channel; each write
// goroutine sends it with Conn.WriteMessage (gorilla adds the 2-byte frame
// header per connection). Unlike the chat example, queued messages are not
// joined with newlines into one frame: the protocol is one JSON object per
// frame, so every message is its own frame and its own write.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"

	"github.com/gorilla/websocket"

	"streamd/bench/peers/internal/wire"
)

const sendBuffer = 256

type client struct {
	conn  *websocket.Conn
	send  chan []byte
	rooms []*room // owned by the hub goroutine
	gone  bool    // owned by the hub goroutine: send is closed
}

type room struct {
	quoted  []byte
	seq     uint64
	members map[*client]struct{}
}

type op uint8

const (
	opRegister op = iota
	opUnregister
	opInbound
)

type request struct {
	op op
	c  *client
	in wire.Inbound
}

type hub struct {
	rooms    map[string]*room
	requests chan request
}

func (h *hub) run() {
	for r := range h.requests {
		c := r.c
		switch {
		case r.op == opRegister:
			h.push(c, wire.Welcome)
		case r.op == opUnregister:
			h.drop(c)
		case c.gone:
		case r.in.Type == "join":
			rm := h.rooms[r.in.Room]
			if rm == nil {
				rm = &room{quoted: wire.Quote(r.in.Room), members: map[*client]struct{}{}}
				h.rooms[r.in.Room] = rm
			}
			if _, ok := rm.members[c]; !ok {
				rm.members[c] = struct{}{}
				c.rooms = append(c.rooms, rm)
			}
			h.push(c, wire.AppendJoined(nil, rm.quoted, rm.seq))
		case r.in.Type == "publish":
			rm := h.rooms[r.in.Room]
			if rm == nil {
				rm = &room{quoted: wire.Quote(r.in.Room), members: map[*client]struct{}{}}
				h.rooms[r.in.Room] = rm
			}
			rm.seq++
			msg := wire.AppendMessage(nil, rm.quoted, rm.seq, r.in.Data)
			for m := range rm.members {
				h.push(m, msg)
			}
		case r.in.Type == "ping":
			h.push(c, wire.Pong)
		}
	}
}

// push queues msg for c, dropping c when its queue is full (as the chat
// example does).
func (h *hub) push(c *client, msg []byte) {
	if c.gone {
		return
	}
	select {
	case c.send <- msg:
	default:
		h.drop(c)
	}
}

func (h *hub) drop(c *client) {
	if c.gone {
		return
	}
	c.gone = true
	for _, rm := range c.rooms {
		delete(rm.members, c)
	}
	c.rooms = nil
	close(c.send)
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{conn: conn, send: make(chan []byte, sendBuffer)}
	h.requests <- request{op: opRegister, c: c}
	go c.writePump()
	c.readPump(h)
}

func (c *client) readPump(h *hub) {
	defer func() {
		h.requests <- request{op: opUnregister, c: c}
		c.conn.Close()
	}()
	c.conn.SetReadLimit(1 << 16)
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		in, err := wire.Parse(msg)
		if err != nil {
			continue
		}
		h.requests <- request{op: opInbound, c: c, in: in}
	}
}

func (c *client) writePump() {
	defer c.conn.Close()
	for msg := range c.send {
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			c.conn.Close()     // ends readPump, which unregisters
			for range c.send { // drain until the hub closes it
			}
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, nil)
}

// serve runs the server on ln until ln is closed.
func serve(ln net.Listener) error {
	h := &hub{rooms: map[string]*room{}, requests: make(chan request, sendBuffer)}
	go h.run()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", h.serveWS)
	return http.Serve(ln, mux)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to listen on (endpoint /ws)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("gorilla listening ws://%s/ws", ln.Addr())
	log.Fatal(serve(ln))
}

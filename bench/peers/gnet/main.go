// Command gnet is a reference server for bench/compare.sh built on
// github.com/panjf2000/gnet/v2 v2.9.7 and github.com/gobwas/ws v1.5.0, the way
// gnet's websocket example does it: multicore (one event loop per CPU that
// the process may run on), the handshake done by ws.Upgrade over a reader on
// the inbound buffer, frames read with ws.ReadHeader and unmasked with
// ws.Cipher, replies framed with ws.CompileFrame. It speaks the streamd
// protocol subset in bench/peers/internal/wire.
//
// Broadcast: under the room's mutex the publisher's loop increments the seq,
// builds the whole WebSocket frame once and hands the same bytes to every
// member: Conn.Write for members on its own event loop, Conn.AsyncWrite
// (queued to the member's loop) for the others. Pinned to one CPU there is
// one loop, so every write is a direct Write from the loop.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"sync"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"streamd/bench/peers/internal/wire"
)

type room struct {
	mu      sync.Mutex
	quoted  []byte
	seq     uint64
	members map[gnet.Conn]struct{}
}

// wsConn is a connection's state (gnet.Conn.Context), touched by its loop only.
type wsConn struct {
	upgraded bool
	frag     []byte // a fragmented message being assembled
	rooms    []*room
}

type server struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan struct{}
	mu     sync.Mutex
	rooms  map[string]*room
}

type readWriter struct {
	io.Reader
	io.Writer
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&wsConn{})
	return nil, gnet.None
}

func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	wc, _ := c.Context().(*wsConn)
	if wc == nil {
		return gnet.None
	}
	for _, rm := range wc.rooms {
		rm.mu.Lock()
		delete(rm.members, c)
		rm.mu.Unlock()
	}
	wc.rooms = nil
	return gnet.None
}

func incomplete(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	wc := c.Context().(*wsConn)
	if !wc.upgraded {
		buf, _ := c.Peek(-1)
		r := bytes.NewReader(buf)
		if _, err := ws.Upgrade(readWriter{r, c}); err != nil {
			if incomplete(err) {
				return gnet.None // wait for the rest of the request
			}
			return gnet.Close
		}
		c.Discard(len(buf) - r.Len())
		wc.upgraded = true
		c.Write(ws.MustCompileFrame(ws.NewTextFrame(wire.Welcome)))
	}
	for {
		buf, _ := c.Peek(-1)
		if len(buf) < ws.MinHeaderSize {
			return gnet.None
		}
		r := bytes.NewReader(buf)
		h, err := ws.ReadHeader(r)
		if err != nil {
			if incomplete(err) {
				return gnet.None
			}
			return gnet.Close
		}
		hl := len(buf) - r.Len()
		if h.Length > 1<<16 {
			return gnet.Close
		}
		if int64(r.Len()) < h.Length {
			return gnet.None // wait for the rest of the frame
		}
		payload := buf[hl : hl+int(h.Length)]
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		action := s.frame(c, wc, h, payload)
		c.Discard(hl + int(h.Length))
		if action != gnet.None {
			return action
		}
	}
}

func (s *server) frame(c gnet.Conn, wc *wsConn, h ws.Header, payload []byte) gnet.Action {
	switch h.OpCode {
	case ws.OpClose:
		c.Write(ws.MustCompileFrame(ws.NewCloseFrame(nil)))
		return gnet.Close
	case ws.OpPing:
		c.Write(ws.MustCompileFrame(ws.NewPongFrame(payload)))
		return gnet.None
	case ws.OpPong:
		return gnet.None
	}
	if !h.Fin || h.OpCode == ws.OpContinuation {
		wc.frag = append(wc.frag, payload...)
		if !h.Fin {
			return gnet.None
		}
		payload, wc.frag = wc.frag, nil
	}
	in, err := wire.Parse(payload)
	if err != nil {
		return gnet.None
	}
	switch in.Type {
	case "join":
		rm := s.room(in.Room)
		rm.mu.Lock()
		if _, ok := rm.members[c]; !ok {
			rm.members[c] = struct{}{}
			wc.rooms = append(wc.rooms, rm)
		}
		c.Write(ws.MustCompileFrame(ws.NewTextFrame(wire.AppendJoined(nil, rm.quoted, rm.seq))))
		rm.mu.Unlock()
	case "publish":
		rm := s.room(in.Room)
		rm.mu.Lock()
		rm.seq++
		frame := ws.MustCompileFrame(ws.NewTextFrame(wire.AppendMessage(nil, rm.quoted, rm.seq, in.Data)))
		loop := c.EventLoop()
		for m := range rm.members {
			if m.EventLoop() == loop {
				m.Write(frame)
			} else {
				m.AsyncWrite(frame, nil)
			}
		}
		rm.mu.Unlock()
	case "ping":
		c.Write(ws.MustCompileFrame(ws.NewTextFrame(wire.Pong)))
	}
	return gnet.None
}

func (s *server) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[name]
	if rm == nil {
		rm = &room{quoted: wire.Quote(name), members: map[gnet.Conn]struct{}{}}
		s.rooms[name] = rm
	}
	return rm
}

func newServer() *server {
	return &server{rooms: map[string]*room{}, booted: make(chan struct{})}
}

// run serves on addr until the engine stops.
func (s *server) run(addr string) error {
	return gnet.Run(s, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay))
}

func (s *server) stop() error { return s.eng.Stop(context.Background()) }

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to listen on (endpoint /ws)")
	flag.Parse()
	log.Printf("gnet listening ws://%s/ws", *listen)
	log.Fatal(newServer().run(*listen))
}

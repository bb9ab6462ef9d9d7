package netpoll

import (
	"bytes"
	"io"
	"net/http"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// Subprotocols the server understands. A client that offers
// SubprotocolMsgpack is answered in msgpack from its first frame on.
const (
	SubprotocolJSON    = "streamd.json"
	SubprotocolMsgpack = "streamd.msgpack"
)

// headerEnd finds the blank line that ends an HTTP request head and returns
// the head's length including it, or -1 while it has not arrived yet.
func headerEnd(b []byte) int {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return -1
	}
	return i + 4
}

// handshakeResult is what an upgrade negotiated.
type handshakeResult struct {
	subprotocol    string
	deflate        bool
	clientTakeover bool // the client compresses with context takeover
	path           []byte
	authorization  []byte // the Authorization header (nil: none)
}

// upgrader performs the HTTP upgrade of one connection at a time. One lives
// in each Loop and is reused (loop-only), so a handshake allocates little.
type upgrader struct {
	opts *Options
	up   ws.Upgrader
	rd   bytes.Reader
	out  bytes.Buffer
	res  handshakeResult
	// origin check hook; nil accepts every origin.
	checkOrigin func(origin []byte) bool
}

type readWriter struct {
	io.Reader
	io.Writer
}

func newUpgrader(opts *Options) *upgrader {
	u := &upgrader{opts: opts}
	u.up = ws.Upgrader{
		OnRequest: func(uri []byte) error {
			path := uri
			if i := bytes.IndexByte(path, '?'); i >= 0 {
				path = path[:i]
			}
			if string(path) != opts.Path {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound),
					ws.RejectionReason("netpoll: no WebSocket endpoint at this path; use "+opts.Path))
			}
			u.res.path = append(u.res.path[:0], uri...)
			return nil
		},
		Protocol: func(p []byte) bool {
			if string(p) == SubprotocolMsgpack || string(p) == SubprotocolJSON {
				if string(p) == SubprotocolMsgpack { // keep the constants: no allocation
					u.res.subprotocol = SubprotocolMsgpack
				} else {
					u.res.subprotocol = SubprotocolJSON
				}
				return true
			}
			return false
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Authorization")) {
				u.res.authorization = append(u.res.authorization[:0], value...)
			}
			if u.checkOrigin != nil && bytes.EqualFold(key, []byte("Origin")) && !u.checkOrigin(value) {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden),
					ws.RejectionReason("netpoll: origin not allowed"))
			}
			return nil
		},
		Negotiate: u.negotiate,
	}
	return u
}

// negotiate accepts the first acceptable permessage-deflate offer. The server
// always compresses without context takeover (so one compressed frame can be
// shared by every receiver); the client may keep its context, in which case
// the connection keeps a 32 KiB window for inflating.
func (u *upgrader) negotiate(opt httphead.Option) (httphead.Option, error) {
	if u.opts.DisableCompression || u.res.deflate || !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	var p wsflate.Parameters
	if err := p.Parse(opt); err != nil {
		return httphead.Option{}, nil // decline a malformed offer; a later one may do
	}
	if p.ServerMaxWindowBits.Defined() && p.ServerMaxWindowBits < 15 {
		// Our deflater always uses a 32 KiB window; decline this offer.
		return httphead.Option{}, nil
	}
	// A client_max_window_bits offer needs nothing from us: a smaller client
	// window only makes inflating easier.
	// Unless Options.CompressionClientTakeover, the client is told not to
	// keep its context either (RFC 7692 §7.1.1.2 lets the server say so even
	// when the offer did not): then no connection needs a 32 KiB window and
	// inflating needs no dictionary.
	accept := wsflate.Parameters{
		ServerNoContextTakeover: true,
		ClientNoContextTakeover: p.ClientNoContextTakeover || !u.opts.CompressionClientTakeover,
	}
	if p.ServerMaxWindowBits.Defined() {
		accept.ServerMaxWindowBits = p.ServerMaxWindowBits // 15: accepted by echoing it
	}
	u.res.deflate = true
	u.res.clientTakeover = !accept.ClientNoContextTakeover
	return accept.Option(), nil
}

// upgrade runs the handshake on a complete request head. It returns the bytes
// to send (the 101 answer, or an HTTP error answer) and whether the upgrade
// succeeded. The returned slice is valid until the next call.
func (u *upgrader) upgrade(head []byte) (resp []byte, res handshakeResult, ok bool) {
	// Buffers are reused, values never: a header of the previous upgrade
	// must not show through (authorization stays nil unless sent).
	u.res = handshakeResult{path: u.res.path[:0]}
	u.out.Reset()
	u.rd.Reset(head)
	_, err := u.up.Upgrade(readWriter{&u.rd, &u.out})
	if err != nil {
		if u.out.Len() == 0 {
			u.out.WriteString("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		}
		return u.out.Bytes(), u.res, false
	}
	return u.out.Bytes(), u.res, true
}

// httpError is a minimal HTTP answer for connections refused before an upgrade.
func httpError(status int, msg string) []byte {
	b := append([]byte(nil), "HTTP/1.1 "...)
	b = appendInt(b, status)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: "...)
	b = appendInt(b, len(msg))
	b = append(b, "\r\n\r\n"...)
	return append(b, msg...)
}

func appendInt(b []byte, v int) []byte {
	var tmp [20]byte
	i := len(tmp)
	if v == 0 {
		return append(b, '0')
	}
	for v > 0 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

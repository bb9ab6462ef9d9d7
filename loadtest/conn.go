package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tsDigits is the width of the zero-padded send timestamp carried in each
// message's data ({"t":"<19 digits>","p":"…"}): the scheduled send time in
// ns on the generator's monotonic clock. A string, because JSON numbers may
// not start with zeros.
const tsDigits = 19

// lconn is one generator connection, owned by one worker after setup.
type lconn struct {
	fd      int
	in      []byte // carry: the start of a frame split across reads
	out     []byte // frames not yet written (socket full, or batched)
	frame   []byte // publish frame template (zero mask key: bytes as sent)
	tOff    int    // offset of the timestamp digits in frame
	dirty   bool   // has bytes in out to write this batch
	wantOut bool   // registered for EPOLLOUT (out did not fit)
	closed  bool
	silent  bool   // a slow consumer: never read
	sub     bool   // a room member (storm: may be dropped and rejoined)
	room    string // the room it joined
	lastSeq int64  // storm: last seq seen in its room
	sent    int64  // messages this connection published
	joinSeq int64  // the room's seq in the joined answer (-1: unknown)

	// fanout --slow-read: a slow consumer that reads readRate bytes per
	// second (budget carries what it may read now); 0: reads at once.
	readRate int64
	budget   float64
	acct     *seqAcct // seq accounting (fanout --count): nil: none
}

// buildPublish makes a masked client frame publishing about size bytes of
// timestamped data to room; tOff is where the timestamp digits go.
func buildPublish(room string, size int) (frame []byte, tOff int) {
	return buildTimed(`{"type":"publish","room":`+strconv.Quote(room)+`,"data":`, size)
}

// buildEvent makes a masked client frame sending the same data as an
// `event` to stream; a pipeline that passes data on answers with a `result`
// carrying it.
func buildEvent(stream string, size int) (frame []byte, tOff int) {
	return buildTimed(`{"type":"event","stream":`+strconv.Quote(stream)+`,"data":`, size)
}

// buildTimed makes the frame head + {"t":"<digits>","p":"<pad>"}}.
func buildTimed(head string, size int) (frame []byte, tOff int) {
	mid := `","p":"`
	pad := max(size-(len(`{"t":"`)+tsDigits+len(mid)+len(`"}`)), 0)
	payload := append([]byte(head), `{"t":"`...)
	tOffPayload := len(payload)
	payload = append(payload, bytes.Repeat([]byte("0"), tsDigits)...)
	payload = append(payload, mid...)
	payload = append(payload, bytes.Repeat([]byte("x"), pad)...)
	payload = append(payload, `"}}`...)
	frame = appendClientFrame(nil, payload)
	return frame, len(frame) - len(payload) + tOffPayload
}

// appendClientFrame appends a masked text frame with a zero mask key (the
// XOR is the identity; RFC 6455 only requires the mask bit to be set).
func appendClientFrame(dst, p []byte) []byte { return appendClientFrameOp(dst, 0x1, p) }

// appendClientFrameOp appends a masked final frame of opcode op.
func appendClientFrameOp(dst []byte, op byte, p []byte) []byte {
	switch n := len(p); {
	case n < 126:
		dst = append(dst, 0x80|op, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	dst = append(dst, 0, 0, 0, 0)
	return append(dst, p...)
}

// putTS writes v as tsDigits zero-padded decimal digits into b.
func putTS(b []byte, v int64) {
	for i := tsDigits - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// parseTS reads tsDigits digits.
func parseTS(b []byte) (int64, bool) {
	if len(b) < tsDigits {
		return 0, false
	}
	var v int64
	for _, c := range b[:tsDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

var (
	msgPrefix    = []byte(`{"type":"message"`)
	resultPrefix = []byte(`{"type":"result"`)
	errorPrefix  = []byte(`{"type":"error"`)
	tsMarker     = []byte(`"t":"`)
)

// dialOptions say how to open and prepare one connection.
type dialOptions struct {
	addr, path string
	source     string // local IP, "" for any
	room       string // joined after the welcome; "" joins nothing
	since      int64  // join with since (≥ 0), or -1
	rcvbuf     int    // SO_RCVBUF before connecting (0: the system's, autotuned)
	timeout    time.Duration
	tls        *tls.Config // wss: TLS terminated in front of the worker (tls.go); nil: plain
}

// streamConn is what the upgrade talks through: the TCP connection, or
// the plaintext end of a TLS pipe.
type streamConn interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
}

// dial opens a WebSocket connection, reads the welcome, joins a room, and
// returns the socket as a raw non-blocking fd for a worker's epoll loop.
func dial(ctx context.Context, o dialOptions) (*lconn, error) {
	d := net.Dialer{Timeout: o.timeout}
	if o.source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.source)}
	}
	if o.source != "" || o.rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if o.source != "" {
					// Let connect pick the port for the whole 4-tuple (bind
					// alone would pick one without reusing TIME_WAIT ports:
					// after a few 10,000-connection runs, "address already
					// in use").
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
				}
				if serr == nil && o.rcvbuf > 0 {
					// Before connect, so the window it advertises fits.
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, o.rcvbuf)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	var tc streamConn = nc.(*net.TCPConn)
	if o.tls != nil {
		uc, err := tlsPipe(nc, o.tls, o.timeout)
		if err != nil {
			_ = nc.Close()
			return nil, err
		}
		tc = uc
	}
	fail := func(err error) (*lconn, error) { tc.Close(); return nil, err }
	_ = tc.SetDeadline(time.Now().Add(o.timeout))
	req := "GET " + o.path + " HTTP/1.1\r\nHost: " + o.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := tc.Write([]byte(req)); err != nil {
		return fail(err)
	}
	// Read the response head byte by byte: nothing after it may be consumed
	// here, the worker reads the rest.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := io.ReadFull(tc, one); err != nil {
			return fail(fmt.Errorf("loadtest: upgrade: %w", err))
		}
		head = append(head, one[0])
		if len(head) > 4096 {
			return fail(errors.New("loadtest: upgrade answer too long"))
		}
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		return fail(fmt.Errorf("loadtest: upgrade refused: %q", bytes.SplitN(head, []byte("\r\n"), 2)[0]))
	}
	if _, err := readServerFrame(tc); err != nil { // welcome
		return fail(err)
	}
	joinSeq := int64(-1)
	if o.room != "" {
		join := `{"type":"join","room":` + strconv.Quote(o.room)
		if o.since >= 0 {
			join += `,"since":` + strconv.FormatInt(o.since, 10)
		}
		join += "}"
		if _, err := tc.Write(appendClientFrame(nil, []byte(join))); err != nil {
			return fail(err)
		}
		for {
			p, err := readServerFrame(tc)
			if err != nil {
				return fail(err)
			}
			if bytes.Contains(p, []byte(`"joined"`)) {
				if v, ok := jsonInt(p, seqMarker); ok {
					joinSeq = v
				}
				break
			}
			if bytes.Contains(p, []byte(`"error"`)) {
				return fail(fmt.Errorf("loadtest: join refused: %s", p))
			}
		}
	}
	_ = tc.SetDeadline(time.Time{})
	raw, err := tc.SyscallConn()
	if err != nil {
		return fail(err)
	}
	fd := -1
	var derr error
	_ = raw.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) })
	if derr != nil {
		return fail(derr)
	}
	tc.Close() // the dup keeps the connection open; Go's poller lets go of it
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &lconn{fd: fd, joinSeq: joinSeq}, nil
}

// jsonInt reads the unsigned integer after key (such as `"seq":`) in p.
func jsonInt(p, key []byte) (int64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	var v int64
	n := 0
	for _, d := range p[i+len(key):] {
		if d < '0' || d > '9' {
			break
		}
		v = v*10 + int64(d-'0')
		n++
	}
	return v, n > 0
}

// readServerFrame reads one unmasked server frame from a blocking reader.
func readServerFrame(r io.Reader) ([]byte, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return nil, err
		}
		n = int(h[2])<<8 | int(h[3])
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return nil, err
		}
		n = 0
		for _, b := range h[2:10] {
			n = n<<8 | int(b)
		}
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return p, err
}

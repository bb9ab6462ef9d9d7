package netpoll

// TLS termination in front of the event loops.
//
// gnet speaks no TLS. With Options.TLSAddr set, a Go net.Listener accepts
// on that address and, for each connection, one goroutine runs the TLS
// handshake (crypto/tls, bounded by HandshakeTimeout), creates a
// socketpair and enrolls one end into a gnet loop (Engine.Register, which
// dups the fd into the loop, chosen by LeastConnections). From then on two
// goroutines pump bytes: client → tls.Conn.Read → socketpair (pumpIn), and
// socketpair → tls.Conn.Write → client (pumpOut). The loop sees plaintext
// HTTP and WebSocket frames on a unix socket, so the upgrade, framing,
// limits, compression, heartbeats and write coalescing are the same code
// as for a plain connection; the Handler cannot tell the two apart except
// by Conn.TLS. The gnet connection carries the *tlsConn as its context
// until OnOpen, which takes the client's real address from it (for
// MaxConnectionsPerIP, Conn.RemoteAddr and logs).
//
// Ownership: a tlsConn is created by the accept loop and owned by its
// goroutines; the loop only reads its immutable fields (remote, ip,
// accepted) and calls claim once, in OnOpen, and loopClosed, in OnClose.
// Shutdown may call abort from any goroutine.
//
// Limits: before the handshake the connection is refused (closed, no TLS)
// when the server is shutting down, when open plus pending connections
// reach MaxConnections, or when its IP holds MaxConnectionsPerIP already
// (the per-IP slot is reserved here and handed to the Conn in OnOpen, so
// plain and TLS connections share one count). Handshakes are bounded by
// HandshakeTimeout, counted from the TCP accept; the WebSocket upgrade's
// own timeout counts from the same instant.
//
// Closing: either side's EOF is passed on as a half-close (socket
// shutdown on the loop side; close_notify and FIN on the client side), so
// the WebSocket close handshake works as over plain TCP. An error on
// either side closes both. Once the loop side is finished (EOF, or gnet
// closed the connection: loopClosed), the client has tlsLinger to finish,
// after which its socket's deadline ends both pumps, so a client that
// never closes cannot hold the goroutines.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// tlsLinger bounds how long a TLS connection's pumps live after the loop
// side is done: enough for the peer's answer to a close frame (closeGrace)
// and the last bytes to reach it.
const tlsLinger = closeGrace + time.Second

// pumpBufSize is each pump's buffer: a TLS record carries at most 16 KiB
// of plaintext, so one read of the tls.Conn never needs more.
const pumpBufSize = 16 << 10

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, pumpBufSize); return &b }}

// tlsListener accepts TLS connections and terminates them in front of the
// loops.
type tlsListener struct {
	srv *Server
	ln  net.Listener
	cfg *tls.Config
	wg  sync.WaitGroup // the accept loop and every tlsConn

	pending atomic.Int64 // accepted and not yet claimed by OnOpen or given up

	mu     sync.Mutex
	closed bool // closeAll ran: no new conns
	conns  map[*tlsConn]struct{}
}

// tlsConn is one TLS client connection and its pumps.
type tlsConn struct {
	t        *tlsListener
	raw      *net.TCPConn
	tc       *tls.Conn
	remote   net.Addr // the client's address: what Conn.RemoteAddr reports
	ip       string   // the client's IP
	reserved bool     // holds a per-IP slot for ip (MaxConnectionsPerIP)
	accepted int64    // unix ns of the TCP accept

	// claim: 0 pending, 1 claimed by the loop (OnOpen; the per-IP slot now
	// belongs to the Conn), 2 given up by the terminator.
	claimState atomic.Int32
	live       atomic.Int32 // goroutines of this conn still running

	mu      sync.Mutex
	pe      *net.UnixConn // the pumps' end of the socketpair (nil until enrolled)
	aborted bool
}

func newTLSListener(s *Server, ln net.Listener) *tlsListener {
	return &tlsListener{srv: s, ln: ln, cfg: s.opts.TLSConfig, conns: make(map[*tlsConn]struct{})}
}

// serve accepts until the listener is closed.
func (t *tlsListener) serve() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.srv.opts.Logger.Warn("netpoll: TLS accept failed; retrying", "err", err, "in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		t.accept(nc.(*net.TCPConn))
	}
}

// accept admits raw (or refuses it) and starts its goroutine.
func (t *tlsListener) accept(raw *net.TCPConn) {
	s := t.srv
	c := &tlsConn{t: t, raw: raw, remote: raw.RemoteAddr(), accepted: time.Now().UnixNano()}
	c.ip = addrIP(c.remote)
	if s.closing.Load() || s.stats.Open.Load()+t.pending.Load() >= int64(s.opts.MaxConnections) {
		s.count(&s.stats.Rejected)
		_ = raw.Close()
		return
	}
	if s.opts.MaxConnectionsPerIP > 0 {
		if !s.reserveIP(c.ip) {
			s.count(&s.stats.Rejected)
			_ = raw.Close()
			return
		}
		c.reserved = true
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		if c.reserved {
			s.releaseIP(c.ip)
		}
		_ = raw.Close()
		return
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	t.pending.Add(1)
	s.stats.TLSOpen.Add(1)
	c.live.Store(1)
	go c.run()
}

// closeListener stops accepting.
func (t *tlsListener) closeListener() { _ = t.ln.Close() }

// closeAll aborts every connection and waits, up to ctx, for every
// goroutine to end.
func (t *tlsListener) closeAll(ctx context.Context) error {
	_ = t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.abort()
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("netpoll: TLS connections still closing at the shutdown deadline")
	}
}

// run handshakes, enrolls the plaintext end into a loop, and pumps the
// client's bytes in (its own goroutine becomes pumpIn).
func (c *tlsConn) run() {
	s := c.t.srv
	_ = c.raw.SetDeadline(time.Unix(0, c.accepted).Add(s.opts.HandshakeTimeout))
	c.tc = tls.Server(c.raw, c.t.cfg)
	if err := c.tc.Handshake(); err != nil {
		s.count(&s.stats.TLSHandshakeFailures)
		s.opts.Logger.Debug("netpoll: TLS handshake failed", "remote", c.remote.String(), "err", err)
		c.done()
		return
	}
	_ = c.raw.SetDeadline(time.Time{})
	pe, loopEnd, err := socketPair()
	if err != nil {
		s.opts.Logger.Warn("netpoll: TLS connection dropped: socketpair failed", "err", err)
		c.done()
		return
	}
	c.mu.Lock()
	if c.aborted {
		c.mu.Unlock()
		_ = pe.Close()
		_ = loopEnd.Close()
		c.done()
		return
	}
	c.pe = pe
	c.mu.Unlock()
	// gnet dups loopEnd's fd into the loop and closes loopEnd itself; the
	// loop's OnOpen finds c in the context.
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), c), loopEnd)
	if _, err := s.eng.Register(ctx); err != nil {
		_ = loopEnd.Close()
		c.done()
		return
	}
	c.live.Add(1)
	go c.pumpOut()
	c.pumpIn()
}

// socketPair returns the two ends of a unix stream socketpair as
// *net.UnixConns (non-blocking, in Go's poller, close-on-exec).
func socketPair() (pe, loopEnd *net.UnixConn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	a, err := fileConn(fds[0])
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1])
	if err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// fileConn wraps fd (and closes it: net.FileConn keeps a dup).
func fileConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	return nc.(*net.UnixConn), nil
}

// pumpIn copies the client's plaintext to the loop. The client's EOF
// (close_notify or FIN) becomes a half-close of the loop's socket; a
// failed write means the loop closed its end, which pumpOut sees too.
func (c *tlsConn) pumpIn() {
	bp := pumpBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, err := c.tc.Read(buf)
		if n > 0 {
			if _, werr := c.pe.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if err == io.EOF {
				_ = c.pe.CloseWrite()
			} else {
				c.abort() // reset, bad record, or the linger deadline
			}
			break
		}
	}
	pumpBufs.Put(bp)
	c.done()
}

// pumpOut copies the loop's output to the client. It waits for the loop's
// socket to be readable before taking a buffer, so an idle connection holds
// one pump buffer (pumpIn's), not two. The loop's EOF (a close handshake's
// half-close, or the connection closed) becomes close_notify and FIN.
func (c *tlsConn) pumpOut() {
	defer c.done()
	rc, err := c.pe.SyscallConn()
	if err != nil {
		c.abort()
		return
	}
	var peek [1]byte
	ready := func(fd uintptr) bool {
		// MSG_PEEK: data or EOF or an error is waiting; EAGAIN: not yet.
		// A raw syscall: unix.Recvfrom allocates the source address. The
		// pointer is to peek, which the closure keeps alive; the kernel
		// writes at most 1 byte there, during the call.
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peek[0])), 1, // #nosec G103 -- see above
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return errno != unix.EAGAIN && errno != unix.EINTR
	}
	for {
		if err := rc.Read(ready); err != nil {
			c.abort()
			return
		}
		bp := pumpBufs.Get().(*[]byte)
		n, err := c.pe.Read(*bp)
		if n > 0 {
			if _, werr := c.tc.Write((*bp)[:n]); werr != nil {
				pumpBufs.Put(bp)
				c.abort() // the client is gone or stopped reading past the linger
				return
			}
		}
		pumpBufs.Put(bp)
		if err != nil {
			if err == io.EOF {
				// The loop is done writing: pass the half-close on and give
				// the client tlsLinger to answer and close.
				_ = c.tc.CloseWrite() // close_notify, bounded by crypto/tls's own 5s write deadline
				_ = c.raw.CloseWrite()
				_ = c.raw.SetReadDeadline(time.Now().Add(tlsLinger))
			} else {
				c.abort()
			}
			return
		}
	}
}

// claim hands the connection to the loop: OnOpen calls it once and owns
// the per-IP slot from then on. False: the terminator gave up already.
func (c *tlsConn) claim() bool {
	if !c.claimState.CompareAndSwap(0, 1) {
		return false
	}
	c.t.pending.Add(-1)
	return true
}

// loopClosed is called by OnClose (loop goroutine; must not block): gnet
// closed the connection, so the client gets tlsLinger to take the last
// bytes, then both pumps end.
func (c *tlsConn) loopClosed() {
	_ = c.raw.SetDeadline(time.Now().Add(tlsLinger))
}

// abort closes both sides now. Safe from any goroutine, more than once.
func (c *tlsConn) abort() {
	c.mu.Lock()
	c.aborted = true
	pe := c.pe
	c.mu.Unlock()
	_ = c.raw.Close()
	if pe != nil {
		_ = pe.Close()
	}
}

// done ends one of c's goroutines; the last one releases everything.
func (c *tlsConn) done() {
	if c.live.Add(-1) > 0 {
		return
	}
	c.abort()
	t := c.t
	if c.claimState.CompareAndSwap(0, 2) { // never reached OnOpen
		t.pending.Add(-1)
		if c.reserved {
			t.srv.releaseIP(c.ip)
		}
	}
	t.srv.stats.TLSOpen.Add(-1)
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// addrIP is the IP of a (TCP) address as a string ("" if unknown).
func addrIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		return host
	}
}

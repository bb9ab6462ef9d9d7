package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Handler receives the events of a Server. Every method runs on the loop
// goroutine that owns the connection (or loop) and must not block.
type Handler interface {
	// OnOpen is called once the upgrade succeeded. Writes queued here are
	// the first frames the client sees.
	OnOpen(c *Conn)
	// OnMessage is called for each complete text (OpText) or binary
	// (OpBinary) message, reassembled and inflated. payload is valid only
	// until OnMessage returns: copy what must outlive it.
	OnMessage(c *Conn, op byte, payload []byte)
	// OnClose is called once for every connection OnOpen saw.
	OnClose(c *Conn, err error)
	// OnWake is called on l after Loop.Wake.
	OnWake(l *Loop)
}

// Stats are the server's counters. Read them with Server.Stats.
type Stats struct {
	Accepted          atomic.Int64
	Open              atomic.Int64
	Rejected          atomic.Int64 // over MaxConnections or MaxConnectionsPerIP, or shutting down
	HandshakeFailures atomic.Int64
	HandshakeTimeouts atomic.Int64
	ProtocolErrors    atomic.Int64
	IdleTimeouts      atomic.Int64
	SlowConsumerDrops atomic.Int64
	// TLS listener (Options.TLSAddr): connections being handshaken or
	// pumped now, and handshakes that failed or timed out (refused
	// versions and cipher suites, plain HTTP on the TLS port, silence).
	TLSOpen              atomic.Int64
	TLSHandshakeFailures atomic.Int64
}

// Server is a WebSocket server on gnet event loops.
type Server struct {
	gnet.BuiltinEventEngine
	opts    Options
	handler Handler
	stats   Stats

	eng     gnet.Engine
	addr    net.Addr
	booted  chan struct{}
	runErr  chan error
	done    chan struct{}
	closing atomic.Bool

	perIPMu sync.Mutex     // guards perIP (accept and close only, not the message path)
	perIP   map[string]int // open connections by remote IP (MaxConnectionsPerIP)

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*Loop
	loopArr atomic.Pointer[[]*Loop] // copy-on-write list for the ticker

	tls *tlsListener // nil without Options.TLSAddr
	// loopsReady is closed by gnet's first OnTick, which runs after every
	// loop is registered: only then may the TLS listener call
	// Engine.Register (OnBoot comes before the loops exist). The ticker
	// runs only with a TLS listener.
	loopsReady chan struct{}
	readyOnce  sync.Once
}

// NewServer checks opts and returns a server that is not yet listening.
func NewServer(opts Options, h Handler) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("netpoll: nil Handler")
	}
	return &Server{
		opts: opts, handler: h,
		booted: make(chan struct{}), runErr: make(chan error, 1), done: make(chan struct{}),
		loops: make(map[gnet.EventLoop]*Loop),
	}, nil
}

// Options returns the server's options with defaults filled in.
func (s *Server) Options() *Options { return &s.opts }

// Stats returns the live counters. Safe from any goroutine.
func (s *Server) Stats() *Stats { return &s.stats }

func (s *Server) count(c *atomic.Int64) { c.Add(1) }

// Start binds the listener (and the TLS listener, with Options.TLSAddr)
// and starts the loops; it returns once they run.
func (s *Server) Start() error {
	if s.opts.TLSAddr != "" {
		ln, err := net.Listen("tcp", s.opts.TLSAddr)
		if err != nil {
			return fmt.Errorf("netpoll: TLS listen on %s: %w (set another TLS listen address)", s.opts.TLSAddr, err)
		}
		s.tls = newTLSListener(s, ln)
		s.loopsReady = make(chan struct{})
	}
	go func() {
		err := gnet.Run(s, "tcp://"+s.opts.Addr,
			gnet.WithNumEventLoop(s.opts.Loops),
			gnet.WithMulticore(s.opts.Loops > 1),
			gnet.WithLockOSThread(s.opts.Pin),
			gnet.WithReadBufferCap(s.opts.ReadBufferCap),
			gnet.WithSocketSendBuffer(s.opts.SocketSendBuffer),
			gnet.WithWriteBufferCap(s.opts.WriteBufferCap),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTicker(s.tls != nil),
			gnet.WithLogger(gnetLogger{s}),
		)
		s.runErr <- err
		close(s.done)
	}()
	select {
	case <-s.booted:
	case err := <-s.runErr:
		if err == nil {
			err = errors.New("netpoll: engine stopped while starting")
		}
		if s.tls != nil {
			s.tls.closeListener()
		}
		return fmt.Errorf("netpoll: listen on %s: %w (set another listen address)", s.opts.Addr, err)
	}
	fd, err := s.eng.Dup()
	if err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				s.addr = &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
			case *unix.SockaddrInet6:
				s.addr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
			}
		}
		_ = unix.Close(fd)
	}
	if s.addr == nil {
		s.addr, _ = net.ResolveTCPAddr("tcp", s.opts.Addr)
	}
	go s.ticker()
	if s.tls != nil {
		select {
		case <-s.loopsReady:
		case <-s.done: // gnet stopped while starting its loops
			s.tls.closeListener()
			return fmt.Errorf("netpoll: the event loops stopped while starting (TLS listener %s)", s.opts.TLSAddr)
		}
		s.tls.wg.Add(1)
		go s.tls.serve()
	}
	return nil
}

// OnTick implements gnet.EventHandler; gnet's ticker runs only with a TLS
// listener, to learn that the loops are up (loopsReady).
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.readyOnce.Do(func() { close(s.loopsReady) })
	return time.Hour, gnet.None
}

// Addr returns the bound listen address (valid after Start).
func (s *Server) Addr() net.Addr { return s.addr }

// TLSAddr returns the bound TLS listen address (valid after Start; nil
// without Options.TLSAddr).
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.ln.Addr()
}

// Shutdown sends close 1001 to every client, waits for them to go (or ctx),
// then stops the loops. Safe from any goroutine; call it once.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return errors.New("netpoll: Shutdown called twice")
	}
	if s.tls != nil {
		s.tls.closeListener() // no new TLS clients; open ones close below like the rest
	}
	for _, l := range s.loopList() {
		_ = l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			l.setNow()
			for i := 0; i < len(l.conns); i++ {
				c := l.conns[i]
				switch c.state {
				case stateOpen:
					c.Close(CloseGoingAway, "server shutting down")
				case stateHandshake:
					c.closeNow()
					i--
				}
			}
			l.flush()
			if l.pinned {
				// gnet unlocks the loop's thread when it exits; hand it
				// back to the runtime with its old mask.
				unpinThread(l.prevMask)
				l.pinned = false
			}
			return nil
		}))
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.stats.Open.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.eng.Stop(stopCtx)
	<-s.done
	if s.tls != nil {
		// The loops are gone; end every TLS pump still running.
		if terr := s.tls.closeAll(stopCtx); err == nil {
			err = terr
		}
	}
	return err
}

// Done is closed once the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) loopList() []*Loop {
	if p := s.loopArr.Load(); p != nil {
		return *p
	}
	return nil
}

// ticker runs each loop's heartbeat scan once a second.
func (s *Server) ticker() {
	period := time.Second
	if hb := s.opts.HeartbeatInterval / 4; hb < period {
		period = max(hb, 10*time.Millisecond)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			for _, l := range s.loopList() {
				if l.scanPending.CompareAndSwap(false, true) { // never pile up scans
					if l.el.Execute(context.Background(), l.scanTask) != nil {
						l.scanPending.Store(false)
					}
				}
			}
		}
	}
}

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

// loopOf returns (creating on first sight) the Loop of gc; loop goroutine.
func (s *Server) loopOf(gc gnet.Conn) *Loop {
	el := gc.EventLoop()
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	if l, ok := s.loops[el]; ok {
		return l
	}
	l := newLoop(s, el, len(s.loops))
	s.loops[el] = l
	list := append(append([]*Loop(nil), s.loopList()...), l)
	s.loopArr.Store(&list)
	if s.opts.Pin {
		l.prevMask, l.pinned = pinThread(l.index)
	}
	return l
}

// reserveIP takes one of ip's MaxConnectionsPerIP slots; false when it
// has none left.
func (s *Server) reserveIP(ip string) bool {
	s.perIPMu.Lock()
	defer s.perIPMu.Unlock()
	if s.perIP == nil {
		s.perIP = make(map[string]int)
	}
	if s.perIP[ip] >= s.opts.MaxConnectionsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

// releaseIP gives back a slot taken by reserveIP.
func (s *Server) releaseIP(ip string) {
	s.perIPMu.Lock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.perIPMu.Unlock()
}

// OnOpen implements gnet.EventHandler. A connection from the TLS listener
// arrives with its *tlsConn as context: the client's address and its
// per-IP slot come from there.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	tc, _ := gc.Context().(*tlsConn)
	c := &Conn{gc: gc, state: stateHandshake, idx: -1}
	gc.SetContext(c)
	if tc != nil {
		if !tc.claim() { // its client is gone already
			c.state = stateRejected
			return nil, gnet.Close
		}
		c.tls = tc
	}
	if s.closing.Load() || s.stats.Open.Load() >= int64(s.opts.MaxConnections) {
		if tc != nil && tc.reserved {
			s.releaseIP(tc.ip)
		}
		c.state = stateRejected
		s.count(&s.stats.Rejected)
		return httpError(503, "streamd: connection limit reached (MaxConnections) or shutting down\n"), gnet.Close
	}
	switch {
	case tc != nil && tc.reserved:
		c.ip = tc.ip // reserved before the TLS handshake
	case s.opts.MaxConnectionsPerIP > 0:
		ip := addrIP(c.RemoteAddr())
		if !s.reserveIP(ip) {
			c.state = stateRejected
			s.count(&s.stats.Rejected)
			return httpError(429, "streamd: too many connections from this address (MaxConnectionsPerIP)\n"), gnet.Close
		}
		c.ip = ip
	}
	s.stats.Open.Add(1)
	s.count(&s.stats.Accepted)
	l := s.loopOf(gc)
	c.loop = l
	l.setNow()
	c.opened, c.lastActive = l.now, l.now
	if tc != nil {
		c.opened = tc.accepted // handshake_timeout counts from the TCP accept, TLS included
	}
	l.addConn(c)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c != nil && c.tls != nil && c.state != stateClosed {
		c.tls.loopClosed()
	}
	if c == nil || c.state == stateRejected || c.state == stateClosed {
		return gnet.None
	}
	wasOpen := c.state == stateOpen || c.state == stateClosing
	c.state = stateClosed
	c.loop.removeConn(c)
	s.stats.Open.Add(-1)
	if c.ip != "" {
		s.releaseIP(c.ip)
	}
	if wasOpen {
		s.handler.OnClose(c, err)
	}
	c.loop.returnOut(c)
	c.msg, c.window = nil, nil
	return gnet.None
}

// OnTraffic implements gnet.EventHandler.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.loop == nil {
		_, _ = gc.Discard(-1)
		return gnet.None
	}
	l := c.loop
	l.setNow()
	action := gnet.None
	if c.state == stateHandshake {
		action = c.handshake()
	}
	if action == gnet.None && c.state != stateHandshake {
		action = c.readFrames()
	}
	l.flush()
	return action
}

// handshake upgrades c once its request head has arrived whole.
func (c *Conn) handshake() gnet.Action {
	s := c.loop.srv
	buf, _ := c.gc.Peek(-1)
	end := headerEnd(buf)
	if end < 0 {
		if len(buf) > s.opts.MaxHeaderBytes {
			s.count(&s.stats.HandshakeFailures)
			_, _ = c.gc.Write(httpError(431, "netpoll: request head over MaxHeaderBytes\n"))
			return gnet.Close
		}
		return gnet.None // wait for the rest of the head
	}
	if end > s.opts.MaxHeaderBytes {
		s.count(&s.stats.HandshakeFailures)
		_, _ = c.gc.Write(httpError(431, "netpoll: request head over MaxHeaderBytes\n"))
		return gnet.Close
	}
	resp, res, ok := c.loop.upgrader.upgrade(buf[:end])
	_, _ = c.gc.Write(resp)
	if c.state != stateHandshake {
		return gnet.None // the write failed and gnet closed c (OnClose ran)
	}
	_, _ = c.gc.Discard(end)
	if !ok {
		s.count(&s.stats.HandshakeFailures)
		return gnet.Close
	}
	c.state = stateOpen
	c.subprotocol = res.subprotocol
	c.deflate = res.deflate
	c.clientTakeover = res.clientTakeover
	c.path = string(res.path)
	c.lastActive = c.loop.now
	c.authz = res.authorization
	s.handler.OnOpen(c)
	c.authz = nil
	return gnet.None
}

// gnetLogger routes gnet's logs to slog at debug level (errors at warn).
type gnetLogger struct{ s *Server }

func (g gnetLogger) Debugf(f string, a ...any) { g.s.opts.Logger.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.s.opts.Logger.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.s.opts.Logger.Warn(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.s.opts.Logger.Warn(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.s.opts.Logger.Error(fmt.Sprintf(f, a...)) }

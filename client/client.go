package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"streamd/protocol"
)

// Errors returned by the Client.
var (
	ErrClosed         = errors.New("client: closed")
	ErrQueueFull      = errors.New("client: offline queue full (raise Options.OfflineQueue)")
	ErrNotConnected   = errors.New("client: not connected")
	ErrMaybeDelivered = errors.New("client: connection lost before the ack; the publish may or may not have been applied (set Options.Producer for exactly-once resends)")
	ErrDropped        = errors.New("client: dropped from the full offline queue (Options.QueueOverflow)")
	ErrGaveUp         = errors.New("client: gave up reconnecting (Options.MaxReconnectAttempts)")
)

// ServerError is an {"type":"error"} answer.
type ServerError struct{ Code, Message string }

func (e *ServerError) Error() string { return "client: server error " + e.Code + ": " + e.Message }

// State is the connection state.
type State int

const (
	Connecting   State = iota // first dial
	Connected                 // welcome received, rooms re-joined, queue flushed
	Reconnecting              // connection lost, waiting on the backoff
	Closed                    // Close was called
)

func (s State) String() string {
	return [...]string{"connecting", "connected", "reconnecting", "closed"}[s]
}

// Message is one room message, or (Stream set) a pipeline's result.
// Data is JSON in both encodings, valid for as long as the caller keeps it
// (it is not reused).
type Message struct {
	Room   string
	Seq    uint64
	Stream string // a result's stream ("" for room messages)
	Data   json.RawMessage
}

// frame is every field of every server → client message we read.
type frame struct {
	Type        string          `json:"type"`
	ID          uint64          `json:"id"`
	Room        string          `json:"room"`
	Stream      string          `json:"stream"`
	Seq         uint64          `json:"seq"`
	Data        json.RawMessage `json:"data"`
	Recovered   *bool           `json:"recovered"`
	Duplicate   bool            `json:"duplicate"`
	Code        string          `json:"code"`
	Message     string          `json:"message"`
	HeartbeatMS int64           `json:"heartbeat_ms"`
	State       string          `json:"state"` // flow
	From        uint64          `json:"from"`  // gap
	To          uint64          `json:"to"`    // gap
}

type outFrame struct {
	Type     string          `json:"type"`
	ID       uint64          `json:"id,omitempty"`
	Room     string          `json:"room,omitempty"`
	Stream   string          `json:"stream,omitempty"`
	Since    *uint64         `json:"since,omitempty"`
	Seq      uint64          `json:"seq,omitempty"`
	UserID   string          `json:"user_id,omitempty"`
	Producer string          `json:"producer,omitempty"`
	PSeq     uint64          `json:"pseq,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type reply struct {
	f   frame
	err error
}

// request is one message waiting for its answer. A publish keeps its
// frame so it can be resent after a reconnect.
type request struct {
	out      outFrame
	done     chan reply // buffered 1; written once
	noAnswer bool       // Send: written and forgotten (not kept pending)
	windowed bool       // counted in Client.inflight (a publish or event in flight)
}

// pend records req as sent and waiting. mu held.
func (c *Client) pend(req *request) {
	c.pending[req.out.ID] = req
	if req.out.Type == "publish" || req.out.Type == "event" {
		req.windowed = true
		c.inflight++
	}
}

// unpend removes req from the pending ones. mu held.
func (c *Client) unpend(req *request) {
	if c.pending[req.out.ID] == req {
		delete(c.pending, req.out.ID)
	}
	if req.windowed {
		req.windowed = false
		c.inflight--
	}
}

type roomState struct {
	handler func(Message)
	lastSeq uint64 // highest seq handed to the dispatch queue; guarded by Client.mu
	since   bool   // lastSeq is meaningful (joined once)
}

// Client is a streamd connection that reconnects by itself. All methods
// are safe for concurrent use. Room handlers run one at a time, in
// arrival order, on one dispatch goroutine; they may call any method.
type Client struct {
	url  string
	opts Options

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards everything below. Frames are written with mu held, so
	// the order of writes is the order of the calls (and the offline
	// queue is flushed before any newer publish).
	mu      sync.Mutex
	conn    *websocket.Conn // nil while not Connected
	state   State
	nextID  uint64
	pseq    uint64
	rooms   map[string]*roomState
	pending map[uint64]*request   // sent, waiting for answers by id
	queue   []*request            // publishes waiting for a connection, in order
	events  map[string][]*request // events waiting for a result, per stream (FIFO)

	dmu      sync.Mutex // guards dispatch
	dispatch []item
	dwake    chan struct{} // buffered 1

	hmu      sync.Mutex // guards the handlers
	typed    map[string][]func(Message)
	onConn   []func()
	onDisc   []func(error)
	onRecon  []func(attempt int, delay time.Duration)
	onErr    []func(error)
	hasTyped atomic.Bool
	qspace   chan struct{} // signalled when the offline queue drains (OverflowBlock)
	started  bool          // Connect is dialling or succeeded (mu)
	gaveUp   bool          // MaxReconnectAttempts ran out (mu)
	paused   bool          // the engine said {"type":"flow","state":"pause"} (mu)
	inflight int           // publishes and events sent and unanswered (mu), at most Options.MaxInFlight
	mpBuf    []byte        // writeLocked's msgpack frame, reused (mu)
}

// endErr is what calls on a client that ended get. mu held.
func (c *Client) endErr() error {
	if c.gaveUp {
		return ErrGaveUp
	}
	return ErrClosed
}

// item is one thing for the dispatch goroutine: a message or result, or
// a lifecycle event.
type item struct {
	kind    itemKind
	m       Message
	err     error
	attempt int
	delay   time.Duration
}

type itemKind uint8

const (
	itemMessage itemKind = iota
	itemResult
	itemConnect
	itemDisconnect
	itemReconnect
	itemError
)

// Dial connects to url (ws://HOST:PORT/ws) and returns once the first
// welcome arrived; later losses are repaired in the background until
// Close. It fails if the first connection fails.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	opts.URL = url
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// New returns a client of cfg.URL that is not connected yet: register
// handlers (OnMessage, OnConnect, …), then Connect.
func New(cfg Config) (*Client, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errors.New("client: Config.URL is empty: want ws://HOST:PORT/ws")
	}
	c := &Client{url: cfg.URL, opts: cfg, rooms: map[string]*roomState{},
		pending: map[uint64]*request{}, events: map[string][]*request{},
		dwake: make(chan struct{}, 1), qspace: make(chan struct{}, 1), typed: map[string][]func(Message){}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.state = Connecting
	return c, nil
}

// Connect dials the engine and returns once the first welcome arrived;
// later losses are repaired in the background until Close. It fails if
// the first dial fails (call it again to retry); a second call while one
// runs or after one succeeded fails at once.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("client: Connect called twice")
	}
	c.started = true // before the dial: a concurrent call must not dial too
	c.mu.Unlock()
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	conn, hb, err := c.connect(ctx)
	if err != nil {
		c.mu.Lock()
		c.started = false // a retry may dial again
		c.mu.Unlock()
		return err
	}
	c.wg.Add(2)
	go c.dispatchLoop()
	// Current before Connect returns: a call right after it is sent, not
	// refused or queued.
	if err := c.activate(conn); err != nil {
		c.wg.Done()
		c.cancel()
		c.wg.Wait()
		return err
	}
	go c.run(conn, hb)
	return nil
}

// OnMessage calls fn for every room message and pipeline result whose
// data is an object with "type": typ (an agent_response, an
// analysis_update, …), after the room's own handler, on the dispatch
// goroutine, in arrival order. Results are passed whether or not a call
// to Event waits for them.
func (c *Client) OnMessage(typ string, fn func(Message)) {
	c.hmu.Lock()
	c.typed[typ] = append(c.typed[typ], fn)
	c.hmu.Unlock()
	c.hasTyped.Store(true)
}

// OnConnect calls fn after each connection is made and its rooms
// re-joined (the first one included), on the dispatch goroutine.
func (c *Client) OnConnect(fn func()) { c.hmu.Lock(); c.onConn = append(c.onConn, fn); c.hmu.Unlock() }

// OnDisconnect calls fn with the cause when a connection is lost.
func (c *Client) OnDisconnect(fn func(error)) {
	c.hmu.Lock()
	c.onDisc = append(c.onDisc, fn)
	c.hmu.Unlock()
}

// OnReconnect calls fn before each reconnect attempt (1, 2, …) with the
// delay it waits first.
func (c *Client) OnReconnect(fn func(attempt int, delay time.Duration)) {
	c.hmu.Lock()
	c.onRecon = append(c.onRecon, fn)
	c.hmu.Unlock()
}

// OnError calls fn with errors no call returns: server errors without an
// id, undecodable frames, giving up (ErrGaveUp).
func (c *Client) OnError(fn func(error)) { c.hmu.Lock(); c.onErr = append(c.onErr, fn); c.hmu.Unlock() }

// post hands it to the dispatch goroutine.
func (c *Client) post(it item) {
	c.dmu.Lock()
	c.dispatch = append(c.dispatch, it)
	c.dmu.Unlock()
	select {
	case c.dwake <- struct{}{}:
	default:
	}
}

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Close stops the client: the connection is closed and every waiting
// call returns ErrClosed.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	c.wg.Wait()
	c.mu.Lock()
	c.failAll(ErrClosed, true)
	c.setState(Closed, nil)
	c.mu.Unlock()
	return nil
}

// connect dials and reads the welcome; it returns the heartbeat interval.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, c.url, c.opts.DialOptions)
	if err != nil {
		return nil, 0, err
	}
	conn.SetReadLimit(-1)
	_, b, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, 0, err
	}
	var w frame
	if err := json.Unmarshal(b, &w); err != nil || w.Type != "welcome" {
		conn.CloseNow()
		return nil, 0, fmt.Errorf("client: expected welcome, got %q", b)
	}
	hb := c.opts.HeartbeatInterval
	if hb == 0 {
		hb = time.Duration(w.HeartbeatMS) * time.Millisecond
	}
	if hb <= 0 {
		hb = 25 * time.Second
	}
	return conn, hb, nil
}

// run owns the connection: it serves conn until it fails, then
// reconnects on the backoff schedule, until Close.
func (c *Client) run(conn *websocket.Conn, hb time.Duration) {
	defer c.wg.Done()
	for {
		err := c.serve(conn, hb)
		if c.ctx.Err() != nil {
			return
		}
		c.opts.Logger.Warn("client: connection lost", "url", c.url, "err", err)
		c.mu.Lock()
		c.conn = nil
		c.failInFlight()
		c.setState(Reconnecting, err)
		c.mu.Unlock()
		c.post(item{kind: itemDisconnect, err: err})
		for attempt := 0; ; attempt++ {
			if m := c.opts.MaxReconnectAttempts; m > 0 && attempt >= m {
				c.opts.Logger.Error("client: giving up", "url", c.url, "attempts", attempt, "err", err)
				c.post(item{kind: itemError, err: fmt.Errorf("%w after %d attempts: %v", ErrGaveUp, attempt, err)})
				c.mu.Lock()
				c.gaveUp = true
				c.failAll(ErrGaveUp, true)
				c.setState(Closed, ErrGaveUp)
				c.mu.Unlock()
				go c.cancel() // the dispatch goroutine delivers the error first
				return
			}
			d := c.opts.Backoff.Delay(attempt, c.opts.Rand())
			c.post(item{kind: itemReconnect, attempt: attempt + 1, delay: d})
			if c.opts.Sleep(c.ctx, d) != nil {
				return
			}
			conn, hb, err = c.connect(c.ctx)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.opts.Logger.Debug("client: reconnect failed", "attempt", attempt, "err", err)
		}
	}
}

// activate makes conn current: rooms re-joined, queue flushed, state
// Connected, OnConnect posted. A no-op when conn already is current.
func (c *Client) activate(conn *websocket.Conn) error {
	c.mu.Lock()
	if c.conn == conn {
		c.mu.Unlock()
		return nil
	}
	c.conn = conn
	err := c.resume()
	if err == nil {
		c.setState(Connected, nil)
	} else {
		c.conn = nil
	}
	c.mu.Unlock()
	if err != nil {
		conn.CloseNow()
		return err
	}
	c.post(item{kind: itemConnect})
	return nil
}

// serve makes conn current (re-joining rooms and flushing the queue),
// pings every hb and reads until the connection fails or is silent for
// DeadAfter.
func (c *Client) serve(conn *websocket.Conn, hb time.Duration) error {
	dead := c.opts.DeadAfter
	if dead == 0 {
		dead = 2 * hb
	}
	if err := c.activate(conn); err != nil {
		return err
	}

	var lastRecv syncTime
	lastRecv.Store(time.Now())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // heartbeat and watchdog
		defer close(done)
		check := hb / 10
		if d := dead / 10; d < check {
			check = d
		}
		t := time.NewTicker(max(check, time.Millisecond))
		defer t.Stop()
		nextPing := time.Now().Add(hb)
		for {
			select {
			case <-stop:
				return
			case <-c.ctx.Done():
				conn.CloseNow()
				return
			case now := <-t.C:
				if now.Sub(lastRecv.Load()) > dead {
					c.opts.Logger.Warn("client: connection dead", "silent_for", now.Sub(lastRecv.Load()))
					conn.CloseNow()
					return
				}
				if now.After(nextPing) {
					nextPing = now.Add(hb)
					c.mu.Lock()
					c.writeLocked(conn, outFrame{Type: "ping"})
					c.mu.Unlock()
				}
			}
		}
	}()
	defer func() { close(stop); <-done; conn.CloseNow() }()
	var conv []byte
	for {
		mt, b, err := conn.Read(c.ctx)
		if err != nil {
			return err
		}
		lastRecv.Store(time.Now())
		if mt == websocket.MessageBinary { // msgpack: read as JSON
			if conv, err = protocol.MsgpackToJSON(conv[:0], b); err != nil {
				c.opts.Logger.Warn("client: bad msgpack frame", "err", err)
				continue
			}
			b = conv
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.opts.Logger.Warn("client: bad frame", "err", err)
			continue
		}
		c.handle(f)
	}
}

// resume re-joins every room (with since = the last seq seen) and
// flushes the offline queue, in order. mu held.
func (c *Client) resume() error {
	for name, r := range c.rooms {
		out := outFrame{Type: "join", Room: name, UserID: c.opts.UserID}
		if r.since {
			s := r.lastSeq
			out.Since = &s
		}
		// The answer is handled by handle (joined / error) with no waiter.
		if err := c.writeLocked(c.conn, out); err != nil {
			return err
		}
	}
	c.paused = false // a new connection starts unpaused
	return c.flushQueue()
}

// flushQueue writes the queued requests, in order. mu held.
func (c *Client) flushQueue() error {
	q := c.queue
	c.queue = nil
	defer func() {
		select {
		case c.qspace <- struct{}{}:
		default:
		}
	}()
	for i, req := range q {
		if c.paused || c.inflight >= c.opts.MaxInFlight {
			c.queue = append(q[i:], c.queue...) // the rest waits for answers or resume
			return nil
		}
		c.nextID++
		req.out.ID = c.nextID
		if !req.noAnswer {
			c.pend(req)
		}
		if err := c.writeLocked(c.conn, req.out); err != nil {
			c.unpend(req)
			c.queue = append(q[i:], c.queue...)
			return err
		}
	}
	return nil
}

func (c *Client) handle(f frame) {
	switch f.Type {
	case "message":
		c.mu.Lock()
		r := c.rooms[f.Room]
		if r == nil || (r.since && f.Seq <= r.lastSeq) {
			c.mu.Unlock()
			return // not ours (any more), or a duplicate
		}
		r.lastSeq, r.since = f.Seq, true
		c.mu.Unlock()
		c.post(item{kind: itemMessage, m: Message{Room: f.Room, Seq: f.Seq, Data: f.Data}})
	case "joined":
		c.mu.Lock()
		if r := c.rooms[f.Room]; r != nil {
			if f.Recovered != nil && !*f.Recovered {
				c.opts.Logger.Warn("client: messages lost in the gap", "room", f.Room, "since", r.lastSeq)
				if c.opts.OnGap != nil {
					c.opts.OnGap(f.Room, r.lastSeq)
				}
			}
			if !r.since { // first join: live from the room's current seq
				r.lastSeq, r.since = f.Seq, true
			}
		}
		c.answer(f, nil)
		c.mu.Unlock()
	case "result":
		c.mu.Lock()
		if req := c.pending[f.ID]; f.ID != 0 && req != nil {
			c.answer(f, nil)
		} else if q := c.events[f.Stream]; f.ID == 0 && len(q) > 0 {
			req := q[0]
			c.events[f.Stream] = q[1:]
			c.unpend(req)
			req.done <- reply{f: f}
			c.refill()
		}
		c.mu.Unlock()
		if c.hasTyped.Load() {
			c.post(item{kind: itemResult, m: Message{Stream: f.Stream, Data: f.Data}})
		}
	case "error":
		c.mu.Lock()
		c.answer(f, &ServerError{Code: f.Code, Message: f.Message})
		c.mu.Unlock()
		if f.ID == 0 {
			c.opts.Logger.Warn("client: server error", "code", f.Code, "message", f.Message)
			c.post(item{kind: itemError, err: &ServerError{Code: f.Code, Message: f.Message}})
		}
	case "flow":
		// Flow control: publishes and events wait in the queue while the
		// engine says pause, and go out, in order, at resume.
		c.mu.Lock()
		switch f.State {
		case "pause":
			c.paused = true
		case "resume":
			c.paused = false
			if c.conn != nil {
				if err := c.flushQueue(); err != nil {
					c.opts.Logger.Debug("client: flush after resume", "err", err)
				}
			}
		}
		c.mu.Unlock()
	case "gap":
		// Backpressure dropped messages of a room for us: they will not
		// come; the seqs after the gap are not a loss.
		c.mu.Lock()
		if r := c.rooms[f.Room]; r != nil && f.To > r.lastSeq {
			since := r.lastSeq
			r.lastSeq, r.since = f.To, true
			if c.opts.OnGap != nil {
				c.opts.OnGap(f.Room, since)
			}
		}
		c.mu.Unlock()
	case "ack", "left", "pong":
		c.mu.Lock()
		c.answer(f, nil)
		c.mu.Unlock()
	}
}

// answer completes the request with f's id, if any. mu held.
func (c *Client) answer(f frame, err error) {
	if f.ID == 0 {
		return
	}
	req := c.pending[f.ID]
	if req == nil {
		return
	}
	c.unpend(req)
	if req.out.Type == "event" {
		c.dropEvent(req)
	}
	req.done <- reply{f: f, err: err}
	c.refill()
}

// refill sends queued requests that the in-flight window now has room
// for. mu held.
func (c *Client) refill() {
	if len(c.queue) > 0 && c.conn != nil && !c.paused && c.inflight < c.opts.MaxInFlight {
		if err := c.flushQueue(); err != nil {
			c.opts.Logger.Debug("client: write failed", "err", err)
		}
	}
}

func (c *Client) dropEvent(req *request) {
	q := c.events[req.out.Stream]
	for i, r := range q {
		if r == req {
			c.events[req.out.Stream] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// failInFlight handles the requests sent on a lost connection: producer
// publishes go back to the front of the queue (they will be resent with
// the same pseq); other publishes fail with ErrMaybeDelivered; the rest
// fail with ErrNotConnected. mu held.
func (c *Client) failInFlight() {
	var resend []*request
	for _, req := range c.pending {
		c.unpend(req)
		switch {
		case (req.out.Type == "publish" || req.out.Type == "event") && req.out.Producer != "":
			resend = append(resend, req)
		case req.out.Type == "publish":
			req.done <- reply{err: ErrMaybeDelivered}
		default:
			req.done <- reply{err: ErrNotConnected}
		}
	}
	clear(c.events)
	// Resend in the original order (ids were assigned in write order).
	sortByID(resend)
	c.queue = append(resend, c.queue...)
}

func sortByID(rs []*request) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].out.ID < rs[j-1].out.ID; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func (c *Client) failAll(err error, queued bool) {
	for _, req := range c.pending {
		c.unpend(req)
		req.done <- reply{err: err}
	}
	clear(c.events)
	if queued {
		for _, req := range c.queue {
			req.done <- reply{err: err}
		}
		c.queue = nil
	}
}

func (c *Client) setState(s State, err error) {
	if c.state == s {
		return
	}
	c.state = s
	if c.opts.OnState != nil {
		c.opts.OnState(s, err)
	}
}

// writeLocked writes one frame. mu held.
func (c *Client) writeLocked(conn *websocket.Conn, out outFrame) error {
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	mt := websocket.MessageText
	if c.opts.Encoding == EncodingMsgpack {
		// conn.Write is done with the frame when it returns: one buffer serves
		// every frame (but a rare big one is not kept).
		m, err := protocol.JSONToMsgpack(c.mpBuf[:0], b)
		if err != nil {
			return err
		}
		if cap(m) <= 64<<10 {
			c.mpBuf = m
		}
		b, mt = m, websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.WriteTimeout)
	defer cancel()
	return conn.Write(ctx, mt, b)
}

func (c *Client) dispatchLoop() {
	defer c.wg.Done()
	var batch []item
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.dwake:
		}
		c.dmu.Lock()
		batch, c.dispatch = c.dispatch, batch[:0]
		c.dmu.Unlock()
		for i := range batch {
			c.deliver(&batch[i])
		}
		clear(batch)
	}
}

// deliver runs the handlers of one item. Dispatch goroutine.
func (c *Client) deliver(it *item) {
	switch it.kind {
	case itemMessage:
		m := it.m
		c.mu.Lock()
		r := c.rooms[m.Room]
		c.mu.Unlock()
		if r == nil {
			return
		}
		r.handler(m)
		c.typedCall(m)
		if c.opts.AutoAck {
			_ = c.Ack(m.Room, m.Seq)
		}
	case itemResult:
		c.typedCall(it.m)
	case itemConnect:
		c.hmu.Lock()
		fns := c.onConn
		c.hmu.Unlock()
		for _, fn := range fns {
			fn()
		}
	case itemDisconnect:
		c.hmu.Lock()
		fns := c.onDisc
		c.hmu.Unlock()
		for _, fn := range fns {
			fn(it.err)
		}
	case itemReconnect:
		c.hmu.Lock()
		fns := c.onRecon
		c.hmu.Unlock()
		for _, fn := range fns {
			fn(it.attempt, it.delay)
		}
	case itemError:
		c.hmu.Lock()
		fns := c.onErr
		c.hmu.Unlock()
		for _, fn := range fns {
			fn(it.err)
		}
	}
}

// typedCall runs the OnMessage handlers of m's data type.
func (c *Client) typedCall(m Message) {
	if !c.hasTyped.Load() || len(m.Data) == 0 || m.Data[0] != '{' {
		return
	}
	var t struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(m.Data, &t) != nil || t.Type == "" {
		return
	}
	c.hmu.Lock()
	fns := c.typed[t.Type]
	c.hmu.Unlock()
	for _, fn := range fns {
		fn(m)
	}
}

type syncTime struct {
	mu sync.Mutex
	t  time.Time
}

func (s *syncTime) Store(t time.Time) { s.mu.Lock(); s.t = t; s.mu.Unlock() }
func (s *syncTime) Load() time.Time   { s.mu.Lock(); defer s.mu.Unlock(); return s.t }

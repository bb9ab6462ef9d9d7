package engine

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"streamd/protocol"
)

// Slow consumers (docs/backpressure.md). A room policy (or a connection,
// with ?backpressure=POLICY on its upgrade URL) chooses what gives way
// when a member's connection does not keep up: once the bytes it has not
// read pass lag_bytes, the member is *lagging* and the room's messages
// for it wait in a bounded queue of its own (max_pending messages,
// references to the shared messages: no copy), handled by the policy:
//
//   - disconnect: the connection is closed at once with 4008 "slow
//     consumer";
//   - drop-newest: a full queue takes no more;
//   - drop-oldest: a full queue lets its oldest message go;
//   - keep-latest: a message replaces the queued one with the same key
//     (the data's conflate_key field: the latest price per symbol);
//   - sample: while lagging, one message in sample_every is kept.
//
// Every message a member does not get is counted, and the member gets a
// gap notice {"type":"gap","room":R,"from":N,"to":M} in its place, before
// the next message of that room it does get, so it can re-sync with
// `join … since`. When the connection drains below half of lag_bytes the
// queue is written out, in order, a slice per loop wake. Without a policy
// (the default) nothing of this runs: a member is written to until
// write_buffer_limit, then dropped.

// Backpressure policies.
const (
	BPDisconnect = "disconnect"
	BPDropNewest = "drop-newest"
	BPDropOldest = "drop-oldest"
	BPKeepLatest = "keep-latest"
	BPSample     = "sample"
)

// CloseSlowConsumer is the close code of the disconnect policy.
const CloseSlowConsumer = 4008

// bpPolicy is a resolved policy.
type bpPolicy struct {
	name        string
	maxPending  int
	lagBytes    int
	conflateKey []byte
	sampleEvery int
}

func (c *Config) bpPolicyOf(p *RoomPolicy) *bpPolicy {
	if p.Backpressure == "" {
		return nil
	}
	bp := &bpPolicy{name: p.Backpressure, maxPending: p.MaxPending, lagBytes: p.LagBytes,
		conflateKey: []byte(p.ConflateKey), sampleEvery: p.SampleEvery}
	bp.defaults(c)
	return bp
}

func (bp *bpPolicy) defaults(c *Config) {
	if bp.maxPending <= 0 {
		bp.maxPending = 1000
	}
	if bp.lagBytes <= 0 {
		bp.lagBytes = c.defaultLagBytes()
	}
	if bp.sampleEvery <= 0 {
		bp.sampleEvery = 10
	}
}

// defaultLagBytes is lag_bytes when a policy does not set it: 256 KiB, at
// most half of write_buffer_limit.
func (c *Config) defaultLagBytes() int { return min(256<<10, c.WriteBufferLimit/2) }

// writeBufferCap sizes netpoll's per-connection ring of unsent bytes so
// that a lagging member's backlog fits it: up to twice the largest
// lag_bytes of the room policies or of a connection's ?backpressure=
// (default lag_bytes) — it is written when it drains below half and gets
// half, so it holds at most lag_bytes plus a message. The ring grows only
// as far as a connection's backlog does, so connections that keep up pay
// nothing for it.
func (c *Config) writeBufferCap() int {
	lag := c.defaultLagBytes() // any ?backpressure= may use it
	for _, p := range c.Rooms {
		lag = max(lag, p.LagBytes)
	}
	return max(64<<10, min(2*lag, c.WriteBufferLimit))
}

// backpressureFor returns a room's policy (nil: none).
func (e *Engine) backpressureFor(name string) *bpPolicy {
	for i := range e.cfg.Rooms {
		if ok, _ := path.Match(e.cfg.Rooms[i].Match, name); ok {
			return e.bpRooms[i]
		}
	}
	return nil
}

func validBP(name string) bool {
	switch name {
	case BPDisconnect, BPDropNewest, BPDropOldest, BPKeepLatest, BPSample:
		return true
	}
	return false
}

// validateBackpressure checks the room policies' backpressure fields.
func (c *Config) validateBackpressure() []error {
	var errs []error
	if c.SocketSendBuffer < 0 {
		errs = append(errs, fmt.Errorf("engine: socket_send_buffer = %d: want bytes ≥ 0 (0: the system's)", c.SocketSendBuffer))
	}
	for i, p := range c.Rooms {
		at := fmt.Sprintf("engine: rooms[%d] (match %q)", i, p.Match)
		if p.Backpressure == "" {
			if p.MaxPending != 0 || p.LagBytes != 0 || p.ConflateKey != "" || p.SampleEvery != 0 {
				errs = append(errs, fmt.Errorf("%s: max_pending, lag_bytes, conflate_key and sample_every need backpressure: disconnect | drop-newest | drop-oldest | keep-latest | sample", at))
			}
			continue
		}
		if !validBP(p.Backpressure) {
			errs = append(errs, fmt.Errorf("%s: backpressure %q: want disconnect, drop-newest, drop-oldest, keep-latest or sample", at, p.Backpressure))
		}
		if p.MaxPending < 0 || p.MaxPending > 1_000_000 {
			errs = append(errs, fmt.Errorf("%s: max_pending = %d: want 1..1,000,000 (0: 1000)", at, p.MaxPending))
		}
		if p.LagBytes < 0 || (p.LagBytes > 0 && c.WriteBufferLimit > 0 && p.LagBytes >= c.WriteBufferLimit) {
			errs = append(errs, fmt.Errorf("%s: lag_bytes = %d: want more than 0 and less than write_buffer_limit (%d)", at, p.LagBytes, c.WriteBufferLimit))
		}
		if (p.Backpressure == BPKeepLatest) != (p.ConflateKey != "") {
			errs = append(errs, fmt.Errorf("%s: keep-latest needs conflate_key (the data field holding the key), and only it takes one", at))
		}
		if p.SampleEvery < 0 || (p.SampleEvery > 0 && p.Backpressure != BPSample) {
			errs = append(errs, fmt.Errorf("%s: sample_every = %d applies to backpressure: sample, and must be positive", at, p.SampleEvery))
		}
	}
	return errs
}

// queryParam returns the value of name in the upgrade URI's query ("" when
// there is none, or the URI does not parse: the upgrade's own checks
// judge it).
func queryParam(uri, name string) string {
	if strings.IndexByte(uri, '?') < 0 {
		return ""
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return ""
	}
	return u.Query().Get(name)
}

// connBackpressure reads ?backpressure=POLICY from the upgrade URL: the
// connection's own choice, over its rooms' (keep-latest needs a key: it
// is not a connection choice).
func (e *Engine) connBackpressure(uri string) (*bpPolicy, error) {
	name := queryParam(uri, "backpressure")
	if name == "" {
		return nil, nil
	}
	if name == BPKeepLatest || !validBP(name) {
		return nil, fmt.Errorf("backpressure=%s: want disconnect, drop-newest, drop-oldest or sample", name)
	}
	bp := &bpPolicy{name: name}
	bp.defaults(&e.cfg)
	return bp, nil
}

// lagState is a lagging member's queue. Loop-only.
type lagState struct {
	bp      *bpPolicy
	q       []lagItem // FIFO: q[head:]
	head    int
	gaps    []gapRange // messages not delivered, by room, in order
	sampled int
	since   int64
}

type lagItem struct {
	r   *room
	m   *Message
	key string // keep-latest: m's conflate key ("" when it has none)
}

type gapRange struct {
	r        *room
	from, to uint64
}

// policyFor is the policy that applies to s in r (nil: none).
func (s *session) policyFor(r *room) *bpPolicy {
	if s.bp != nil {
		return s.bp
	}
	return r.bp
}

// deliverLagging handles a member with a policy: it writes m when s keeps
// up, or queues it per the policy. It returns whether m was written or
// queued (false: dropped, or s disconnected). Loop-only.
func (ls *loopState) deliverLagging(s *session, r *room, m *Message, bp *bpPolicy) (written bool) {
	lag := s.lag
	if lag == nil {
		if s.conn.Buffered() < bp.lagBytes {
			return false // keeps up: the caller writes
		}
		if bp.name == BPDisconnect {
			ls.counters.bpDisconnects.Add(1)
			s.conn.Close(CloseSlowConsumer, "slow consumer: "+strconv.Itoa(s.conn.Buffered())+" bytes unread")
			return true // nothing more is written to it
		}
		lag = ls.newLag(bp)
		s.lag = lag
		ls.lagging = append(ls.lagging, s)
		ls.lagCount.Store(int32(len(ls.lagging)))
		ls.kickBackpressure()
	}
	var key string // keep-latest only
	switch lag.bp.name {
	case BPDropNewest:
		if lag.len() >= lag.bp.maxPending {
			ls.dropped(lag, r, m)
			return true
		}
	case BPDropOldest:
		if lag.len() >= lag.bp.maxPending {
			ls.dropOldest(lag)
		}
	case BPSample:
		lag.sampled++
		if lag.sampled%lag.bp.sampleEvery != 1 && lag.bp.sampleEvery > 1 || lag.len() >= lag.bp.maxPending {
			ls.dropped(lag, r, m)
			return true
		}
	case BPKeepLatest:
		key, _ = ls.conflateKey(m, lag.bp.conflateKey)
		if key != "" {
			for i := lag.head; i < len(lag.q); i++ {
				if it := &lag.q[i]; it.r == r && it.key == key {
					ls.dropped(lag, r, it.m)
					it.m.release()
					copy(lag.q[i:], lag.q[i+1:])
					lag.q[len(lag.q)-1] = lagItem{}
					lag.q = lag.q[:len(lag.q)-1]
					break
				}
			}
		}
		if lag.len() >= lag.bp.maxPending { // too many keys: the oldest goes
			ls.dropOldest(lag)
		}
	}
	if lag.head > 0 && lag.head >= len(lag.q)/2 {
		n := copy(lag.q, lag.q[lag.head:])
		clear(lag.q[n:])
		lag.q, lag.head = lag.q[:n], 0
	}
	m.retain()
	lag.q = append(lag.q, lagItem{r: r, m: m, key: key})
	return true
}

func (l *lagState) len() int { return len(l.q) - l.head }

// pop takes the oldest queued item off lag (the caller releases its m).
func (l *lagState) pop() lagItem {
	it := l.q[l.head]
	l.q[l.head] = lagItem{}
	l.head++
	return it
}

// dropOldest lets lag's oldest queued message go, noted as dropped.
func (ls *loopState) dropOldest(lag *lagState) {
	old := lag.pop()
	ls.dropped(lag, old.r, old.m)
	old.m.release()
}

// dropped notes that s will not get m: counted, and in its gaps.
func (ls *loopState) dropped(lag *lagState, r *room, m *Message) {
	ls.counters.bpDropped.Add(1)
	for i := len(lag.gaps) - 1; i >= 0; i-- {
		g := &lag.gaps[i]
		if g.r != r {
			continue
		}
		if m.seq == g.to+1 {
			g.to = m.seq
			return
		}
		if m.seq+1 == g.from {
			g.from = m.seq
			return
		}
		break
	}
	if len(lag.gaps) >= 4096 { // bounded: widen the room's last range
		for i := len(lag.gaps) - 1; i >= 0; i-- {
			if g := &lag.gaps[i]; g.r == r {
				g.from, g.to = min(g.from, m.seq), max(g.to, m.seq)
				return
			}
		}
	}
	lag.gaps = append(lag.gaps, gapRange{r: r, from: m.seq, to: m.seq})
}

// conflateKey returns the value of field key of m's data (as its raw
// bytes: "AAPL" and AAPL differ), for JSON and msgpack data (transcoded
// in the loop's scratch). Loop-only.
func (ls *loopState) conflateKey(m *Message, key []byte) (string, bool) {
	data := m.data
	if m.enc == encMsgpack {
		ls.conv = transcode(ls.conv[:0], data, encMsgpack, encJSON)
		data = ls.conv
	}
	var val string
	found := false
	_ = protocol.ForEachMember(data, func(k []byte, start, end int) bool {
		if string(k) == string(key) {
			val, found = string(data[start:end]), true
			return false
		}
		return true
	})
	return val, found
}

// drainLagging writes out lagging members' queues whose connections
// drained below half of lag_bytes, up to lag_bytes per member per wake,
// gap notices first. Loop-only.
func (ls *loopState) drainLagging() {
	n := 0
	for _, s := range ls.lagging {
		lag := s.lag
		if s.closed || lag == nil {
			ls.releaseLag(s)
			continue
		}
		if s.conn.Buffered() > lag.bp.lagBytes/2 {
			ls.lagging[n] = s
			n++
			continue
		}
		budget := lag.bp.lagBytes / 2
		for lag.len() > 0 && budget > 0 {
			it := lag.pop()
			ls.writeGaps(s, lag, it.r, it.m.seq)
			f := ls.messageFrame(s, it.m)
			budget -= len(f)
			s.write(f)
			ls.counters.delivered.Add(1)
			it.m.release()
		}
		if lag.len() > 0 {
			ls.lagging[n] = s
			n++
			continue
		}
		ls.writeGaps(s, lag, nil, 0) // the rest
		s.lag = nil
		ls.freeLag(lag)
	}
	clear(ls.lagging[n:])
	ls.lagging = ls.lagging[:n]
	ls.lagCount.Store(int32(n))
}

// writeGaps sends s the gap notices of r below seq (r nil: every one).
func (ls *loopState) writeGaps(s *session, lag *lagState, r *room, seq uint64) {
	k := 0
	for _, g := range lag.gaps {
		if r != nil && (g.r != r || g.to >= seq) {
			lag.gaps[k] = g
			k++
			continue
		}
		b := append(ls.gapBuf[:0], `{"type":"gap","room":`...)
		b = protocol.AppendJSONString(b, g.r.nameB)
		b = append(b, `,"from":`...)
		b = strconv.AppendUint(b, g.from, 10)
		b = append(b, `,"to":`...)
		b = strconv.AppendUint(b, g.to, 10)
		b = append(b, '}')
		ls.gapBuf = b
		s.write(ls.envelopeFrame(s, b))
		ls.counters.bpGaps.Add(1)
	}
	clear(lag.gaps[k:])
	lag.gaps = lag.gaps[:k]
}

// releaseLag drops a closed session's queue.
func (ls *loopState) releaseLag(s *session) {
	if lag := s.lag; lag != nil {
		for i := lag.head; i < len(lag.q); i++ {
			lag.q[i].m.release()
		}
		s.lag = nil
		ls.freeLag(lag)
	}
}

// newLag returns a lagState for bp, a freed one when the loop has one: a
// member that falls behind again and again (a reader slower than its
// room, drained to nothing between bursts) reuses its queue instead of
// growing a new one each time. Loop-only.
func (ls *loopState) newLag(bp *bpPolicy) *lagState {
	var lag *lagState
	if k := len(ls.lagFree); k > 0 {
		lag = ls.lagFree[k-1]
		ls.lagFree[k-1] = nil
		ls.lagFree = ls.lagFree[:k-1]
	} else {
		lag = new(lagState)
	}
	lag.bp, lag.since = bp, time.Now().UnixNano()
	return lag
}

// freeLag keeps lag, emptied, for newLag: at most lagFreeMax per loop,
// and only queues of up to lagFreeItems entries (max_pending may be a
// million).
func (ls *loopState) freeLag(lag *lagState) {
	if len(ls.lagFree) >= lagFreeMax || cap(lag.q) > lagFreeItems || cap(lag.gaps) > lagFreeItems {
		return
	}
	clear(lag.q[:cap(lag.q)])
	clear(lag.gaps[:cap(lag.gaps)])
	*lag = lagState{q: lag.q[:0], gaps: lag.gaps[:0]}
	ls.lagFree = append(ls.lagFree, lag)
}

const (
	lagFreeMax   = 16
	lagFreeItems = 2048 // 16 × 2048 × (32 B item + 24 B gap) ≈ 1.8 MiB a loop at most
)

// wakeLagging wakes the loops that hold lagging members, paused
// producers or held messages, so they are served even when no traffic
// wakes them (every bpTick); it reports whether any loop had one.
func (e *Engine) wakeLagging() bool {
	woke := false
	for i := range e.loops {
		if ls := e.loops[i].Load(); ls != nil && ls.waiting() {
			ls.np.Wake()
			woke = true
		}
	}
	return woke
}

// waiting reports whether the loop has anything for the backpressure
// tick. Safe from any goroutine.
func (ls *loopState) waiting() bool {
	return ls.lagCount.Load() > 0 || ls.pausedCount.Load() > 0 || ls.heldCount.Load() > 0 || ls.rateHeldCount.Load() > 0
}

// kickBackpressure tells backpressureTicker that this loop has something
// waiting (after its count was stored). Loop-only; never blocks.
func (ls *loopState) kickBackpressure() {
	select {
	case ls.e.bpKick <- struct{}{}:
	default:
	}
}

// backpressureTicker runs wakeLagging every bpTick while some loop has a
// lagging member, a paused producer or a held message, and sleeps until
// kicked when none has: an idle engine is not woken 200 times a second.
func (e *Engine) backpressureTicker() {
	defer e.workerWG.Done()
	t := time.NewTimer(bpTick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		if !e.wakeLagging() {
			select {
			case <-e.stop:
				return
			case <-e.bpKick:
			}
		}
		t.Reset(bpTick)
	}
}

const bpTick = 5 * time.Millisecond

// Blocking pipeline inputs (input overflow: block). An event whose
// pipeline queue is full is held for its connection, and the connection
// is read no further (netpoll PauseReading): only that producer waits,
// not the loop's other connections. With flow_control it is also told to
// pause. Every bpTick the loop retries; once the event is in, reading
// resumes where it stopped.

// heldEvent is an event waiting for room in its pipelines' queues.
type heldEvent struct {
	pi      pipeIn    // for pi.rt
	rest    []*pipeRT // the stream's other pipelines, after pi.rt
	replyID []byte    // the client's id, in its encoding (an overloaded answer)
}

// hold parks pi for s and pauses its reading. Loop-only.
func (ls *loopState) hold(s *session, h *heldEvent) {
	// Copies: rest is a slice of the stream table (a reload replaces it),
	// replyID of the envelope (reused by the next message).
	h.rest = append([]*pipeRT(nil), h.rest...)
	h.replyID = append([]byte(nil), h.replyID...)
	s.held = h
	s.conn.PauseReading()
	ls.holding = append(ls.holding, s)
	ls.heldCount.Store(int32(len(ls.holding)))
	ls.kickBackpressure()
	ls.counters.heldEvents.Add(1)
	if ls.e.cfg.FlowControl && !s.flowPaused {
		ls.flow(s, true)
	}
}

// releaseHeld retries the held events; those that got in resume their
// connections. Loop-only.
func (ls *loopState) releaseHeld() {
	n := 0
	for _, s := range ls.holding {
		h := s.held
		if s.closed || h == nil || h.pi.rt.retired.Load() {
			s.held = nil
			if !s.closed && !s.rateHeld {
				s.conn.ResumeReading() // its pipeline is gone: the event with it
			}
			continue
		}
		if !h.pi.rt.exec.in[ls.index].TryPush(h.pi) {
			ls.holding[n] = s
			n++
			continue
		}
		h.pi.rt.exec.notify()
		if next := ls.offer(s, h.pi, h.rest, h.replyID); next != nil {
			s.held = next // the next blocking pipeline is full too
			ls.holding[n] = s
			n++
			continue
		}
		s.held = nil
		if !s.rateHeld {
			s.conn.ResumeReading()
		}
	}
	clear(ls.holding[n:])
	ls.holding = ls.holding[:n]
	ls.heldCount.Store(int32(n))
}

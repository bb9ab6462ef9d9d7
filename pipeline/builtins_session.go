package pipeline

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	"streamd/operators"
	"streamd/state"
)

func init() { extraBuiltins = append(extraBuiltins, registerSession) }

func registerSession(r *Registry) {
	r.Register("session", OpDef{
		Doc: "tracks a session per `key`: each event refreshes it (its data becomes the session's); a session idle for `duration` " +
			"emits {\"type\":\"session_expired\",\"key\",\"first_seen\",\"last_seen\",\"data\"} on the `expired` port; events pass on unchanged. " +
			"Sessions live in the state store and survive restarts",
		Fields: []string{"key", "duration", "max"},
		Build:  buildSession,
	})
}

// sessionNode passes events on and keeps a state.Sessions of their keys.
type sessionNode struct {
	stats   *operators.Stats
	out     operators.Outlet[Event]
	expired operators.Outlet[Event]
	key     *Expr
	opts    state.SessionOptions
	store   *state.Store // the engine's, or one of its own (in memory)
	batcher *state.Batcher
	sess    *state.Sessions
	flow    *operators.Flow
	tick    time.Duration
	pending []Event
	gen     uint64
	opened  bool
	rep     *reporter
}

func buildSession(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	key, err := c.Expr("key", ns.Key, false)
	if err != nil {
		return nil, err
	}
	if ns.Duration <= 0 {
		return nil, c.Errorf("duration", "op session needs duration > 0: how long a session may stay idle")
	}
	n := &sessionNode{stats: operators.NewStats(ns.Name, "session"), key: key,
		tick: min(max(ns.Duration/10, 10*time.Millisecond), time.Second)}
	n.rep = c.reporter(func() *operators.Stats { return n.stats })
	n.opts = state.SessionOptions{Namespace: "session:" + c.Spec.Name + "/" + ns.Name, Idle: ns.Duration, MaxSessions: ns.Max}
	if c.Opts.checkOnly {
		return n, nil // Check: no store needed to validate
	}
	if n.store, n.batcher, err = c.storeBatcher("session state"); err != nil {
		return nil, err
	}
	return n, nil
}

// Open builds the sessions on the flow's clock and restores them from the
// store (first Open only; a reload that keeps the node keeps them).
func (n *sessionNode) Open(f *operators.Flow) error {
	n.flow = f
	if n.store == nil {
		return nil // built by Check
	}
	if !n.opened {
		n.opened = true
		n.opts.Batcher = n.batcher
		n.opts.Now = func() time.Time { return time.Unix(0, f.Now()) }
		n.opts.OnExpire = n.onExpire
		s, err := n.store.NewSessions(n.opts)
		if err != nil {
			return fmt.Errorf("session: %w", err)
		}
		if err := s.Load(); err != nil {
			return fmt.Errorf("session: restoring from the store: %w", err)
		}
		n.sess = s
	}
	n.gen++
	f.After(n.tick, n, n.gen)
	return nil
}

func (n *sessionNode) onExpire(key string, data []byte, first, last time.Time) {
	b := make([]byte, 0, 96+len(key)+len(data))
	b = append(b, `{"type":"session_expired","key":`...)
	b = appendJSONString(b, key)
	b = append(b, `,"first_seen":`...)
	b = strconv.AppendInt(b, first.UnixMilli(), 10)
	b = append(b, `,"last_seen":`...)
	b = strconv.AppendInt(b, last.UnixMilli(), 10)
	b = append(b, `,"data":`...)
	if len(data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, data...)
	}
	b = append(b, '}')
	ev := NewEvent("", b, last.UnixNano())
	ev.Key = key
	n.pending = append(n.pending, ev)
}

// OnTimer expires idle sessions (arg: the Open generation).
func (n *sessionNode) OnTimer(_ int64, gen uint64) {
	if gen != n.gen || n.sess == nil {
		return
	}
	n.advance()
	n.flow.After(n.tick, n, gen)
}

func (n *sessionNode) advance() {
	n.sess.Advance()
	if len(n.pending) > 0 {
		n.expired.Emit(n.pending)
		clear(n.pending)
		n.pending = n.pending[:0]
	}
	if err := n.sess.Err(); err != nil {
		n.rep.note(err, "session state write (sessions may not survive a restart)")
	}
}

// Push refreshes each event's session and passes the batch on.
func (n *sessionNode) Push(batch []Event) {
	start := time.Now()
	n.stats.In(len(batch))
	for i := range batch {
		k, err := n.key.String(&batch[i])
		if err != nil {
			n.rep.fail(err, "key (the event passes, no session)")
			continue
		}
		n.sess.Touch(k, batch[i].Data)
	}
	n.stats.Observe(start, len(batch))
	if len(n.pending) > 0 { // Touch may expire a stale session or evict one
		n.expired.Emit(n.pending)
		clear(n.pending)
		n.pending = n.pending[:0]
	}
	n.out.Emit(batch)
}

func (n *sessionNode) Close() error { n.gen++; return nil }

// Flush expires what is due now.
func (n *sessionNode) Flush() {
	if n.sess != nil {
		n.advance()
	}
}

func (n *sessionNode) Stats() *operators.Stats { return n.stats }

func (n *sessionNode) Input(name string) (any, reflect.Type, bool) {
	if name != "" {
		return nil, nil, false
	}
	return operators.Inlet[Event](n), reflect.TypeFor[Event](), true
}

func (n *sessionNode) Output(name string) (operators.Port, bool) {
	switch name {
	case "":
		return &n.out, true
	case "expired":
		return &n.expired, true
	}
	return nil, false
}

func (n *sessionNode) Outputs() []string { return []string{"", "expired"} }

// erase ends key's session without a session_expired event and deletes
// its record (Pipeline.Erase).
func (n *sessionNode) erase(key string) (string, bool, error) {
	if n.sess == nil {
		return "session", false, nil
	}
	_, held := n.sess.Get(key)
	n.sess.Delete(key)
	if n.batcher != nil {
		if err := n.batcher.Sync(); err != nil {
			return "session", held, err
		}
	}
	return "session", held, n.sess.Err()
}

package pipeline

import (
	"errors"

	"streamd/operators"
	"streamd/state"
)

func init() { extraBuiltins = append(extraBuiltins, registerStateSink) }

// StateNamespace is the state-store namespace of a pipeline's `state`
// sinks: keys written by pipeline P live under StateNamespace(P).
func StateNamespace(pipeline string) string { return "state:" + pipeline }

func registerStateSink(r *Registry) {
	r.Register("state", OpDef{
		Doc: "sink: writes each event's data (or the `to` expression) under `key` in the pipeline's keyed state, " +
			"durably (group commit), optionally expiring after `duration`; read it back with GET /state on the admin port",
		Fields: []string{"key", "to", "duration"},
		Build:  buildStateSink,
	})
}

func buildStateSink(c *BuildContext) (operators.Node, error) {
	ns := c.Node
	key, err := c.Expr("key", ns.Key, false)
	if err != nil {
		return nil, err
	}
	var to *Expr
	if ns.To != "" {
		if to, err = c.Expr("to", ns.To, false); err != nil {
			return nil, err
		}
	}
	if ns.Duration < 0 {
		return nil, c.Errorf("duration", "a negative TTL")
	}
	var sink *operators.Sink[Event]
	if c.Opts.checkOnly {
		return operators.NewSink(ns.Name, func([]Event) {}), nil
	}
	nsName := StateNamespace(c.Spec.Name)
	ttl := ns.Duration
	rep := c.reporter(func() *operators.Stats { return sink.Stats() })
	var kb []byte
	write := func(ev *Event) ([]byte, []byte, bool) {
		k, err := key.String(ev)
		if err != nil {
			rep.fail(err, "key (not written)")
			return nil, nil, false
		}
		val := ev.Data
		if to != nil {
			if val, _, err = to.JSON(ev); err != nil {
				rep.fail(err, "to (not written)")
				return nil, nil, false
			}
		}
		kb = state.AppendKey(kb[:0], nsName, []byte(k))
		return kb, val, true
	}
	if ck := c.ck; ck != nil {
		// checkpointed: the writes wait for the pipeline's next checkpoint
		sink = operators.NewSink(ns.Name, func(batch []Event) {
			for i := range batch {
				if k, v, ok := write(&batch[i]); ok {
					ck.put(k, v, ttl)
				}
			}
		})
		st := c.Opts.Store
		return stateSinkNode{Sink: sink, eraseKey: func(key []byte) (bool, error) {
			held := ck.drop(key)
			if st != nil {
				if _, err := st.Get(key); err == nil {
					held = true
				} else if !errors.Is(err, state.ErrNotFound) {
					return false, err
				}
			}
			ck.del(key)
			return held, nil
		}, ns: nsName}, nil
	}
	st, b, err := c.storeBatcher("state sink")
	if err != nil {
		return nil, err
	}
	onWrite := func(err error) {
		if err != nil {
			rep.note(err, "state write failed")
		}
	}
	sink = operators.NewSink(ns.Name, func(batch []Event) {
		for i := range batch {
			k, v, ok := write(&batch[i])
			if !ok {
				continue
			}
			if err := b.Put(k, v, ttl, onWrite); err != nil {
				rep.fail(err, "state write refused")
			}
		}
		b.Flush()
	})
	return stateSinkNode{Sink: sink, eraseKey: func(key []byte) (bool, error) {
		_ = b.Sync() // writes queued before the erase land first
		held := true
		if _, err := st.Get(key); errors.Is(err, state.ErrNotFound) {
			held = false
		} else if err != nil {
			return false, err
		}
		var derr error
		if err := b.Delete(key, func(err error) { derr = err }); err != nil {
			return false, err
		}
		if err := b.Sync(); err != nil {
			return false, err
		}
		return held, derr
	}, ns: nsName}, nil
}

// stateSinkNode is a state sink that can erase a key (Pipeline.Erase).
type stateSinkNode struct {
	*operators.Sink[Event]
	eraseKey func(key []byte) (bool, error)
	ns       string
}

func (n stateSinkNode) erase(key string) (string, bool, error) {
	held, err := n.eraseKey(state.AppendKey(nil, n.ns, []byte(key)))
	return "state", held, err
}

// storeBatcher returns the store a stateful node writes to (the
// engine's, or a store of its own in memory when Options.Store is nil) and
// a Batcher on it; both are closed with the pipeline.
func (c *BuildContext) storeBatcher(what string) (*state.Store, *state.Batcher, error) {
	st, own := c.Opts.Store, false
	if st == nil {
		var err error
		if st, err = state.Open(state.Options{InMemory: true, GCInterval: -1}); err != nil {
			return nil, nil, c.Errorf("", "%s: %v", what, err)
		}
		own = true
	}
	b, err := st.NewBatcher()
	if err != nil {
		if own {
			_ = st.Close()
		}
		return nil, nil, c.Errorf("", "%s: %v", what, err)
	}
	c.Keep(storeCloser{b: b, st: st, own: own})
	return st, b, nil
}

// storeCloser syncs and closes a node's Batcher, and its own store.
type storeCloser struct {
	b   *state.Batcher
	st  *state.Store
	own bool
}

func (c storeCloser) Close() error {
	_ = c.b.Sync()
	c.b.Close()
	if c.own {
		return c.st.Close()
	}
	return nil
}

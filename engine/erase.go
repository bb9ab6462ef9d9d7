package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"streamd/pipeline"
	"streamd/state"
)

// EraseReport says what Erase removed.
type EraseReport struct {
	// Subject is the user or key erased.
	Subject string `json:"subject"`
	// Messages counts, per room, the messages the subject published that
	// were erased: from the durable log (durable rooms) or the in-memory
	// history (other rooms). They keep their seqs and are replayed with
	// data null.
	Messages map[string]int `json:"messages"`
	// Positions lists the durable rooms where the subject's consumer
	// position (its acks) was deleted.
	Positions []string `json:"positions"`
	// State lists the pipeline records removed: state-sink keys and
	// sessions held under the subject as key.
	State []pipeline.Erased `json:"state"`
}

// Erase removes everything the engine holds for one user or key, for a
// data-protection request, and says what it removed:
//   - the messages the user published (as the authenticated subject),
//     from durable room logs and from in-memory room histories: their
//     payload is deleted and they are replayed with data null, keeping
//     their seqs so that no client sees a gap;
//   - the user's consumer positions in durable rooms;
//   - what pipelines hold under the user as key: state-sink records and
//     sessions (in a checkpointing pipeline, with its next checkpoint).
//
// Open windows of aggregates keep their numbers (no payload) until they
// close; presence ends with the user's connections. Messages already
// delivered to clients, webhooks and logs are outside the engine.
func (e *Engine) Erase(ctx context.Context, subject string) (*EraseReport, error) {
	if subject == "" {
		return nil, errors.New("engine: Erase: an empty subject")
	}
	if e.state.Load() != stateStarted {
		return nil, errors.New("engine: Erase before Start or after Close")
	}
	rep := &EraseReport{Subject: subject, Messages: map[string]int{}, Positions: []string{}, State: []pipeline.Erased{}}
	var errs []error

	// Pipelines, each on its executor.
	e.pipesMu.Lock()
	rts := make([]*pipeRT, 0, len(e.pipes))
	for _, rt := range e.pipes {
		rts = append(rts, rt)
	}
	e.pipesMu.Unlock()
	slices.SortFunc(rts, func(a, b *pipeRT) int { return strings.Compare(a.name, b.name) })
	for _, rt := range rts {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		var got []pipeline.Erased
		var err error
		rt.exec.do(func() {
			if rt.p != nil && !rt.retired.Load() {
				got, err = rt.p.Erase(subject)
			}
		})
		rep.State = append(rep.State, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Rooms in memory: histories and positions.
	e.rooms.Range(func(_, v any) bool {
		r := v.(*room)
		sh := r.shard
		sh.mu.Lock()
		n := r.hist.erase(subject)
		delete(r.positions, subject)
		sh.mu.Unlock()
		if n > 0 && !r.durable {
			rep.Messages[r.name] = n
		}
		return true
	})

	if e.store == nil {
		return rep, errors.Join(errs...)
	}
	// Durable logs.
	rooms, err := e.roomLog.Rooms()
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	erased := []byte{logNull | logErased}
	for _, room := range rooms {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		n, err := e.roomLog.Rewrite(room, func(_ uint64, data []byte) ([]byte, bool) {
			_, from, _, was, ok := parseLogEntry(data)
			return erased, ok && !was && string(from) == subject
		})
		if n > 0 {
			rep.Messages[room] = n
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Positions on disk (rooms not in memory too).
	var keys [][]byte
	suffix := []byte("\x00" + subject)
	err = e.store.Scan(state.Key(positionNS, ""), func(key, _ []byte) bool {
		if bytes.HasSuffix(key, suffix) {
			keys = append(keys, append([]byte(nil), key...))
		}
		return true
	})
	if err != nil {
		errs = append(errs, err)
	}
	prefixLen := len(state.Key(positionNS, ""))
	for _, k := range keys {
		if err := e.store.Delete(k); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Positions = append(rep.Positions, string(k[prefixLen:len(k)-len(suffix)]))
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("engine: erase %q: %w", subject, errors.Join(errs...))
	}
	return rep, nil
}

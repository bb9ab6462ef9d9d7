package engine

import (
	"encoding/binary"
	"fmt"
	"time"

	"streamd/pipeline"
	"streamd/protocol"
	"streamd/state"
)

// Checkpointing pipelines (pipeline/checkpoint.go, docs/durability.md).
// The executor that runs such a pipeline
//   - admits each `event` once per (producer, pseq): an event whose pseq
//     is not above the last one admitted from its producer is answered
//     {"type":"ack",…,"duplicate":true} and dropped;
//   - every `checkpoint` interval, when something happened, takes the
//     pipeline's checkpoint, adds the producers' positions that changed,
//     and commits it all in one transaction on a goroutine of its own
//     (one commit in flight per pipeline);
//   - once it is committed, acknowledges the events it covers
//     ({"type":"ack","id":…,"stream":…}) and publishes the pipeline's
//     outbox, each message with producer "pipeline:NAME" and its outbox
//     number as pseq;
//   - on a failed commit, keeps what it holds and tries again at the next
//     interval, merged with what came since (nothing is acknowledged
//     before it is on disk);
//   - on stop, commits a last checkpoint instead of draining the windows,
//     so that they resume after a restart;
//   - on start, restores the checkpoint and publishes the outbox messages
//     that may not have been published.

const ckProdNS = "ckprod" // pipeline \x00 producer → last admitted pseq

// ckRT is a checkpointing pipeline's executor-side state.
type ckRT struct {
	every     time.Duration
	next      int64                // unix ns: the next checkpoint is not taken before
	producers map[string]prodState // pseq and used (seq unused)
	changed   map[string]uint64    // producer → pseq, since the last checkpoint
	clock     int64                // admissions, for eviction
	acks      []pendingAck         // events admitted since the last checkpoint
	inflight  bool
	done      chan ckResult // the committer's answer (capacity 1)
	retry     *ckJob        // a job whose commit failed
	republish []pipeline.OutboxMsg
	failures  int
	lastWarn  time.Time
}

// pendingAck is an admitted event to acknowledge after the commit.
type pendingAck struct {
	sess *session
	id   []byte // JSON (the loop transcodes a msgpack client's id)
}

// ckJob is one checkpoint on its way to the disk.
type ckJob struct {
	ops    []state.Op
	acks   []pendingAck
	outbox []pipeline.OutboxMsg
}

type ckResult struct {
	job *ckJob
	err error
}

func ckProdKey(pipe, producer string) []byte {
	return state.Key(ckProdNS, pipe+"\x00"+producer)
}

// ckStart restores rt's checkpoint and producers; executor goroutine,
// before the flow opens.
func (e *Engine) ckStart(rt *pipeRT, p *pipeline.Pipeline, fresh bool) error {
	if !p.Checkpointing() {
		rt.ck = nil
		return nil
	}
	if rt.ck != nil { // a reload: the running state carries on
		rt.ck.every = p.Spec.Checkpoint
		return nil
	}
	ck := &ckRT{every: p.Spec.Checkpoint, producers: map[string]prodState{}, changed: map[string]uint64{}, done: make(chan ckResult, 1)}
	if !fresh { // turned on by a reload: the running windows are the state
		rt.ck = ck
		return nil
	}
	if e.store == nil {
		return fmt.Errorf("pipeline %q: checkpoint needs the state store", p.Spec.Name)
	}
	outbox, skipped, err := p.RestoreCheckpoint(e.store)
	if err != nil {
		return err
	}
	for _, name := range skipped {
		e.cfg.Logger.Warn("engine: a node changed since the last checkpoint: it starts empty", "pipeline", p.Spec.Name, "node", name)
	}
	prefix := ckProdKey(p.Spec.Name, "")
	err = e.store.Scan(prefix, func(key, value []byte) bool {
		if len(value) == 8 {
			ck.producers[string(key[len(prefix):])] = prodState{pseq: binary.BigEndian.Uint64(value)}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("pipeline %q: read the producers' positions: %w", p.Spec.Name, err)
	}
	ck.republish = outbox
	rt.ck = ck
	return nil
}

// ckAdmit decides whether an event enters a checkpointing pipeline and
// notes what its acknowledgement needs. Executor goroutine.
func (x *pipeExec) ckAdmit(rt *pipeRT, pi *pipeIn) bool {
	ck := rt.ck
	sess, _ := pi.ev.Origin.(*session)
	if pi.producer != "" {
		ck.clock++
		p, ok := ck.producers[pi.producer]
		if ok && pi.pseq <= p.pseq {
			x.e.duplicates.Add(1)
			if sess != nil && pi.ev.ID != nil {
				x.ckAck(rt, pendingAck{sess: sess, id: pi.ev.ID}, true)
			}
			return false
		}
		if !ok && len(ck.producers) >= maxProducers {
			evictOldest(ck.producers)
		}
		ck.producers[pi.producer] = prodState{pseq: pi.pseq, used: ck.clock}
		ck.changed[pi.producer] = pi.pseq
	}
	if sess != nil && pi.ev.ID != nil {
		ck.acks = append(ck.acks, pendingAck{sess: sess, id: pi.ev.ID})
	}
	rt.p.MarkDirty()
	return true
}

// ckAck sends {"type":"ack","id":…,"stream":…} to an event's sender.
func (x *pipeExec) ckAck(rt *pipeRT, a pendingAck, duplicate bool) {
	b := make([]byte, 0, 48+len(a.id)+len(rt.streamB))
	b = append(b, `{"type":"ack","id":`...)
	b = append(b, a.id...)
	b = append(b, `,"stream":`...)
	b = protocol.AppendJSONString(b, rt.streamB)
	if duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	b = append(b, '}')
	x.emit(a.sess.ls.index, out{kind: outReply, sess: a.sess, msg: newMessage(encJSON, b, nil)})
}

// ckTick finishes a commit that came back and starts the next one when
// it is due. It returns the work done (0: nothing). Executor goroutine.
func (x *pipeExec) ckTick(rt *pipeRT, now int64) int {
	ck := rt.ck
	n := 0
	if len(ck.republish) > 0 {
		x.ckPublish(rt, ck.republish)
		ck.republish = nil
		n++
	}
	select {
	case res := <-ck.done:
		ck.inflight = false
		x.ckFinish(rt, res)
		n++
	default:
	}
	if ck.inflight || now < ck.next || (!rt.p.Dirty() && ck.retry == nil) {
		return n
	}
	ck.next = now + int64(ck.every)
	job, err := x.ckTake(rt)
	if err != nil {
		x.ckWarn(rt, "taking a checkpoint failed", err)
		return n + 1
	}
	ck.inflight = true
	st := x.e.store
	go func() {
		ck.done <- ckResult{job: job, err: st.Commit(job.ops)}
		x.notify()
	}()
	return n + 1
}

// ckTake takes the pipeline's checkpoint with the producers that changed,
// merged after a failed job's.
func (x *pipeExec) ckTake(rt *pipeRT) (*ckJob, error) {
	ck := rt.ck
	cp, err := rt.p.TakeCheckpoint()
	if err != nil {
		return nil, err
	}
	job := &ckJob{ops: cp.Ops, acks: ck.acks, outbox: cp.Outbox}
	ck.acks = nil
	for prod, pseq := range ck.changed {
		job.ops = append(job.ops, state.Op{Key: ckProdKey(rt.name, prod), Value: binary.BigEndian.AppendUint64(nil, pseq), TTL: producerTTL})
	}
	clear(ck.changed)
	if r := ck.retry; r != nil {
		ck.retry = nil
		job.ops = append(r.ops, job.ops...) // later writes win
		job.acks = append(r.acks, job.acks...)
		job.outbox = append(r.outbox, job.outbox...)
	}
	return job, nil
}

// ckFinish acknowledges and publishes what a committed job covers, or
// keeps a failed one for the next try.
func (x *pipeExec) ckFinish(rt *pipeRT, res ckResult) {
	ck := rt.ck
	if res.err != nil {
		ck.retry = res.job
		x.ckWarn(rt, "checkpoint commit failed; nothing it covers is acknowledged, retrying", res.err)
		return
	}
	x.e.ckCommits.Add(1)
	for _, a := range res.job.acks {
		x.ckAck(rt, a, false)
	}
	x.ckPublish(rt, res.job.outbox)
}

// ckPublish publishes committed outbox messages, each applied once by a
// durable room, and notes them for deletion.
func (x *pipeExec) ckPublish(rt *pipeRT, msgs []pipeline.OutboxMsg) {
	if len(msgs) == 0 {
		return
	}
	producer := "pipeline:" + rt.name
	for _, m := range msgs {
		if _, err := x.e.publishJSONFrom(m.Room, m.Data, 0, producer, m.Seq); err != nil {
			x.ckWarn(rt, "publishing a checkpointed room output failed", err)
		}
	}
	rt.p.Published(msgs)
}

func (x *pipeExec) ckWarn(rt *pipeRT, msg string, err error) {
	ck := rt.ck
	x.e.ckFailures.Add(1)
	ck.failures++
	if time.Since(ck.lastWarn) >= 10*time.Second {
		x.e.cfg.Logger.Warn("engine: "+msg, "pipeline", rt.name, "failures_since_last_warning", ck.failures, "err", err)
		ck.lastWarn, ck.failures = time.Now(), 0
	}
}

// ckStop commits a last checkpoint (the windows stay open, to resume
// after a restart) and waits for it. Executor goroutine.
func (x *pipeExec) ckStop(rt *pipeRT) {
	ck := rt.ck
	if ck.inflight {
		x.ckFinish(rt, <-ck.done)
		ck.inflight = false
	}
	if len(ck.republish) > 0 {
		x.ckPublish(rt, ck.republish)
		ck.republish = nil
	}
	if !rt.p.Dirty() && ck.retry == nil {
		return
	}
	job, err := x.ckTake(rt)
	if err != nil {
		x.e.cfg.Logger.Error("engine: the last checkpoint failed: what came since the one before is not saved", "pipeline", rt.name, "err", err)
		return
	}
	x.ckFinish(rt, ckResult{job: job, err: x.e.store.Commit(job.ops)})
	if ck.retry != nil {
		x.e.cfg.Logger.Error("engine: the last checkpoint could not be committed: producers will resend what it covered", "pipeline", rt.name)
	}
}

// ckPending reports whether a commit answer waits. Executor goroutine.
func (x *pipeExec) ckPending() bool {
	for _, rt := range x.pipes {
		if rt.ck != nil && (len(rt.ck.done) > 0 || len(rt.ck.republish) > 0) {
			return true
		}
	}
	return false
}

// ckWait is how long the executor may sleep before a checkpoint is due.
func (x *pipeExec) ckWait(now int64, wait time.Duration) time.Duration {
	for _, rt := range x.pipes {
		if rt.ck != nil && !rt.ck.inflight && (rt.p.Dirty() || rt.ck.retry != nil) {
			wait = min(wait, time.Duration(rt.ck.next-now))
		}
	}
	return wait
}

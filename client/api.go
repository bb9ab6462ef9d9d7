package client

import (
	"context"
	"encoding/json"
)

// call sends out and waits for its answer. A publish (and, with
// Options.Producer, an event) made while disconnected is queued (bounded
// by Options.OfflineQueue, full by Options.QueueOverflow); anything else
// fails with ErrNotConnected. Safe from any goroutine.
func (c *Client) call(ctx context.Context, out outFrame) (frame, error) {
	req, err := c.submit(ctx, out, false)
	if err != nil {
		return frame{}, err
	}
	select {
	case r := <-req.done:
		return r.f, r.err
	case <-ctx.Done():
		c.mu.Lock()
		c.forget(req)
		c.mu.Unlock()
		return frame{}, ctx.Err()
	case <-c.ctx.Done(): // closed (or gave up) while waiting
		c.mu.Lock()
		c.forget(req)
		err := c.endErr()
		c.mu.Unlock()
		return frame{}, err
	}
}

// submit writes out, or queues it while disconnected, and returns the
// request its answer will complete (none when noAnswer: it is written
// and forgotten).
func (c *Client) submit(ctx context.Context, out outFrame, noAnswer bool) (*request, error) {
	req := &request{out: out, done: make(chan reply, 1), noAnswer: noAnswer}
	c.mu.Lock()
	if c.ctx.Err() != nil || c.state == Closed {
		err := c.endErr()
		c.mu.Unlock()
		return nil, err
	}
	queueable := out.Type == "publish" || (out.Type == "event" && c.opts.Producer != "")
	if queueable && c.opts.Producer != "" {
		c.pseq++
		req.out.Producer, req.out.PSeq = c.opts.Producer, c.pseq
	}
	// Offline: disconnected, or told to pause (flow control) for what
	// can wait in the queue.
	offline := func() bool {
		return c.conn == nil || (queueable && (c.paused || c.inflight >= c.opts.MaxInFlight || len(c.queue) > 0))
	}
	for offline() && queueable && c.opts.QueueOverflow == OverflowBlock && len(c.queue) >= c.opts.OfflineQueue {
		c.mu.Unlock()
		select {
		case <-c.qspace:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
		c.mu.Lock()
	}
	if offline() {
		if !queueable {
			c.mu.Unlock()
			return nil, ErrNotConnected
		}
		if len(c.queue) >= c.opts.OfflineQueue {
			switch c.opts.QueueOverflow {
			case OverflowDropOldest:
				if len(c.queue) == 0 { // a queue of size < 1
					c.mu.Unlock()
					return nil, ErrQueueFull
				}
				old := c.queue[0]
				c.queue = c.queue[1:]
				old.done <- reply{err: ErrDropped}
			case OverflowDropNewest:
				c.mu.Unlock()
				return nil, ErrDropped
			default:
				c.mu.Unlock()
				return nil, ErrQueueFull
			}
		}
		c.queue = append(c.queue, req)
	} else {
		c.nextID++
		req.out.ID = c.nextID
		if !noAnswer {
			c.pend(req)
			if out.Type == "event" {
				c.events[out.Stream] = append(c.events[out.Stream], req)
			}
		}
		if err := c.writeLocked(c.conn, req.out); err != nil {
			// The read loop will notice the broken connection; the
			// request is failed or requeued by failInFlight then.
			c.opts.Logger.Debug("client: write failed", "err", err)
		}
	}
	c.mu.Unlock()
	return req, nil
}

// forget drops a request whose caller gave up. A publish already sent
// may still be applied. mu held.
func (c *Client) forget(req *request) {
	if req.out.ID != 0 {
		c.unpend(req)
	}
	if req.out.Type == "event" {
		c.dropEvent(req)
	}
	for i, q := range c.queue {
		if q == req {
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			break
		}
	}
}

// Join subscribes to room and calls handler for each of its messages,
// in seq order and each seq once, across reconnects (the room is
// re-joined with since = the last seq seen). While disconnected the room
// is recorded and joined on the next connection. Joining a room again
// replaces its handler.
func (c *Client) Join(ctx context.Context, room string, handler func(Message)) error {
	c.mu.Lock()
	if r := c.rooms[room]; r != nil {
		c.rooms[room] = &roomState{handler: handler, lastSeq: r.lastSeq, since: r.since}
		c.mu.Unlock()
		return nil
	}
	c.rooms[room] = &roomState{handler: handler}
	online := c.conn != nil
	c.mu.Unlock()
	if !online {
		return nil
	}
	_, err := c.call(ctx, outFrame{Type: "join", Room: room, UserID: c.opts.UserID})
	if err != nil && err != ErrNotConnected {
		c.mu.Lock()
		delete(c.rooms, room)
		c.mu.Unlock()
		return err
	}
	return nil
}

// Leave unsubscribes from room; its handler is not called again.
func (c *Client) Leave(ctx context.Context, room string) error {
	c.mu.Lock()
	delete(c.rooms, room)
	online := c.conn != nil
	c.mu.Unlock()
	if !online {
		return nil
	}
	_, err := c.call(ctx, outFrame{Type: "leave", Room: room})
	if err == ErrNotConnected {
		err = nil // the next connection does not re-join it
	}
	return err
}

// Send is Event without waiting for an answer: it returns once the event
// is written, or queued while disconnected (only with Options.Producer:
// then it is sent after the reconnect, and a checkpointing pipeline
// applies it once). Its answers reach only the typed handlers. ctx bounds
// the wait for room in a full queue (OverflowBlock).
func (c *Client) Send(ctx context.Context, stream string, data any) error {
	raw, err := marshal(data)
	if err != nil {
		return err
	}
	_, err = c.submit(ctx, outFrame{Type: "event", Stream: stream, Data: raw}, true)
	return err
}

// Publish sends data (marshalled as JSON; a json.RawMessage or []byte
// holding JSON is sent as is) to room and returns the seq of its ack.
// While disconnected it is queued and sent after the reconnect. With
// Options.Producer set, a publish resent after a reconnect that the
// server had already applied returns the original seq.
func (c *Client) Publish(ctx context.Context, room string, data any) (uint64, error) {
	raw, err := marshal(data)
	if err != nil {
		return 0, err
	}
	f, err := c.call(ctx, outFrame{Type: "publish", Room: room, Data: raw})
	return f.Seq, err
}

// Ack records that every message of room up to seq was processed (in a
// durable room joined with Options.UserID, the next join without since
// resumes after it). Fire and forget; while disconnected it is dropped
// (the messages will be delivered again: at-least-once).
func (c *Client) Ack(room string, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ErrNotConnected
	}
	return c.writeLocked(c.conn, outFrame{Type: "ack", Room: room, Seq: seq})
}

// Event feeds data to pipeline input stream and waits for its answer:
// the result a `reply` output sends (matched by id), or the ack of a
// checkpointing pipeline (data nil). With Options.Producer, an event
// carries producer and pseq, is queued while disconnected and resent
// after a reconnect, and a checkpointing pipeline applies it once.
func (c *Client) Event(ctx context.Context, stream string, data any) (json.RawMessage, error) {
	raw, err := marshal(data)
	if err != nil {
		return nil, err
	}
	f, err := c.call(ctx, outFrame{Type: "event", Stream: stream, Data: raw})
	if f.Type == "ack" {
		return nil, err
	}
	return f.Data, err
}

func marshal(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case json.RawMessage:
		return d, nil
	case []byte:
		return d, nil
	}
	return json.Marshal(data)
}

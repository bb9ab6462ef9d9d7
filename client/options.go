package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/coder/websocket"
)

// Backoff is the reconnect schedule: attempt n (from 0) waits
// min(Initial×Multiplier^n, Max), then scaled by a random factor in
// [1-Jitter, 1+Jitter]. The attempt count restarts after a connection
// that got its welcome.
type Backoff struct {
	Initial    time.Duration // default 100ms
	Max        time.Duration // default 5s
	Multiplier float64       // default 2
	Jitter     float64       // default 0.2; 0 < Jitter ≤ 1
}

// Delay returns the wait before reconnect attempt n (0-based); r is a
// uniform random number in [0,1).
func (b Backoff) Delay(n int, r float64) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < n && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	d *= 1 + b.Jitter*(2*r-1)
	return time.Duration(d)
}

// Config is Options (the name the docs and examples use with New).
type Config = Options

// Queue overflow policies (Options.QueueOverflow).
const (
	OverflowError      = "error"       // the new request fails with ErrQueueFull (default)
	OverflowDropOldest = "drop-oldest" // the oldest queued request fails with ErrDropped; the new one is queued
	OverflowDropNewest = "drop-newest" // the new request fails with ErrDropped
	OverflowBlock      = "block"       // the call waits for room (or its context)
)

// Encodings (Options.Encoding).
const (
	EncodingJSON    = "json"    // text frames (default)
	EncodingMsgpack = "msgpack" // binary frames; Message.Data is still JSON
)

// Options configure a Client. Every zero field takes the default its
// comment names (EnsureDefaults).
type Options struct {
	// URL is the engine's endpoint, ws://HOST:PORT/ws (New; Dial takes
	// it as an argument).
	URL string
	// ReconnectInterval, MaxReconnectInterval and Jitter, when set,
	// override Backoff.Initial, Backoff.Max and Backoff.Jitter.
	ReconnectInterval    time.Duration
	MaxReconnectInterval time.Duration
	Jitter               float64
	// MaxReconnectAttempts bounds the attempts after a lost connection;
	// then the client closes itself (state Closed, every call fails with
	// ErrGaveUp). Default 0: forever.
	MaxReconnectAttempts int
	// Compression negotiates permessage-deflate (context takeover).
	// Default false.
	Compression bool
	// Encoding is EncodingJSON (default) or EncodingMsgpack.
	Encoding string
	// QueueSize, when set, overrides OfflineQueue.
	QueueSize int
	// QueueOverflow is what a full offline queue does with one more
	// request: OverflowError (default), OverflowDropOldest,
	// OverflowDropNewest or OverflowBlock.
	QueueOverflow string
	// MaxInFlight bounds the publishes and events sent and not yet
	// answered; more wait in the queue, in order. It keeps a burst from
	// outrunning the engine's flow control (keep it under half the
	// connection's rate limit). Default 64.
	MaxInFlight int
	// UserID is sent with every join (durable rooms record ack positions
	// per user; presence rooms list it). Default: none.
	UserID string
	// Producer, when set, makes every Publish exactly-once: it carries
	// "producer":Producer and a "pseq" that increases per client, so a
	// publish resent after a reconnect is applied once by the room.
	// It must be unique among the engine's publishers. Default: none
	// (a publish in flight when the connection drops fails with
	// ErrMaybeDelivered instead of being resent).
	Producer string
	// Backoff is the reconnect schedule. Defaults: see Backoff.
	Backoff Backoff
	// HeartbeatInterval is how often the client sends {"type":"ping"}.
	// Default: the welcome's heartbeat_ms.
	HeartbeatInterval time.Duration
	// DeadAfter is the silence (no frame at all) after which a connection
	// is considered dead, closed and reconnected. Default 2×heartbeat.
	DeadAfter time.Duration
	// OfflineQueue bounds the publishes queued while disconnected; more
	// fail with ErrQueueFull. Default 1024; negative: no queue.
	OfflineQueue int
	// AutoAck sends {"type":"ack","room","seq"} after each room handler
	// returns. Default false (call Ack).
	AutoAck bool
	// WriteTimeout bounds one frame write. Default 10s.
	WriteTimeout time.Duration
	// Logger receives connection events. Default: slog.Default().
	Logger *slog.Logger
	// OnState, if set, is called on every state change, from the
	// connection goroutine; it must not block.
	OnState func(State, error)
	// OnGap, if set, is called when a re-join answers "recovered":false:
	// messages of the room after since are gone from the server.
	OnGap func(room string, since uint64)

	// Test seams.
	// DialOptions are passed to websocket.Dial. Default nil.
	DialOptions *websocket.DialOptions
	// Sleep waits d or until ctx is done. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a uniform number in [0,1) for the jitter. Default
	// math/rand/v2.Float64.
	Rand func() float64
}

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.ReconnectInterval > 0 {
		o.Backoff.Initial = o.ReconnectInterval
	}
	if o.MaxReconnectInterval > 0 {
		o.Backoff.Max = o.MaxReconnectInterval
	}
	if o.Jitter != 0 {
		o.Backoff.Jitter = o.Jitter
	}
	if o.QueueSize != 0 {
		o.OfflineQueue = o.QueueSize
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.Encoding == "" {
		o.Encoding = EncodingJSON
	}
	if o.QueueOverflow == "" {
		o.QueueOverflow = OverflowError
	}
	if o.Compression && o.DialOptions == nil {
		o.DialOptions = &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover}
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = 100 * time.Millisecond
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 5 * time.Second
	}
	if o.Backoff.Multiplier < 1 {
		o.Backoff.Multiplier = 2
	}
	if o.Backoff.Jitter == 0 {
		o.Backoff.Jitter = 0.2
	}
	if o.OfflineQueue == 0 {
		o.OfflineQueue = 1024
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
}

// Validate reports settings out of range.
func (o *Options) Validate() error {
	if o.Backoff.Jitter < 0 || o.Backoff.Jitter > 1 {
		return errors.New("client: Backoff.Jitter must be in [0,1]")
	}
	if o.Backoff.Max < o.Backoff.Initial {
		return errors.New("client: Backoff.Max must be ≥ Backoff.Initial")
	}
	if o.HeartbeatInterval < 0 || o.DeadAfter < 0 {
		return errors.New("client: HeartbeatInterval and DeadAfter must not be negative")
	}
	if o.MaxReconnectAttempts < 0 {
		return errors.New("client: MaxReconnectAttempts must not be negative (0: forever)")
	}
	switch o.Encoding {
	case EncodingJSON, EncodingMsgpack:
	default:
		return fmt.Errorf("client: Encoding %q: want %q or %q", o.Encoding, EncodingJSON, EncodingMsgpack)
	}
	switch o.QueueOverflow {
	case OverflowError, OverflowDropOldest, OverflowDropNewest, OverflowBlock:
	default:
		return fmt.Errorf("client: QueueOverflow %q: want error, drop-oldest, drop-newest or block", o.QueueOverflow)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package client is the Go client of streamd's wire protocol v1 (JSON
// text frames over WebSocket, github.com/coder/websocket).
//
// A Client owns one connection at a time and repairs it by itself:
//
//   - Reconnect: a lost connection is redialled after Options.Backoff
//     (exponential, capped, ±Jitter); the attempt count restarts after a
//     welcome. State and Options.OnState show Connected / Reconnecting.
//   - Heartbeats: {"type":"ping"} every HeartbeatInterval (default the
//     welcome's heartbeat_ms); a connection with no frame for DeadAfter
//     (default 2×heartbeat) is closed and redialled, even when TCP stays
//     silently open.
//   - Rooms with recovery: every joined room is re-joined on each new
//     connection with since = the last seq seen, and messages with a seq
//     at or below it are dropped, so a handler sees each seq once, in
//     order, as far as the room's history (or durable log) reaches back.
//     A "recovered":false is reported to Options.OnGap.
//   - Offline queue: publishes made while disconnected are queued (at
//     most Options.OfflineQueue) and sent in order before any newer one.
//     With Options.Producer every publish carries producer and pseq, so a
//     publish in flight when the connection dropped is resent and counts
//     as delivered when the server answers duplicate (with the original
//     seq); without it such a publish fails with ErrMaybeDelivered.
//
// Also: handlers per data type (OnMessage("agent_response", fn) for room
// messages and pipeline results whose data has that "type") and for the
// connection's life (OnConnect, OnDisconnect, OnReconnect, OnError);
// msgpack frames (Options.Encoding) and permessage-deflate
// (Options.Compression); MaxReconnectAttempts; offline-queue overflow
// policies (error, drop-oldest, drop-newest, block); events with a
// producer are queued and resent like publishes, so a checkpointing
// pipeline counts each once (docs/durability.md).
//
// Use New(Config{URL: …}) to register handlers before Connect, or Dial to
// connect at once. The browser client with the same semantics is
// client/js/streamd.js, served by streamd at /client.js.
//
// Invariants: frames are written with Client.mu held, so writes happen in
// call order; Client.mu is never held while a handler runs. Room handlers,
// typed handlers and lifecycle handlers run one at a time on one dispatch
// goroutine, in arrival order, and may call any method. Every exported
// method is safe for concurrent use.
package client

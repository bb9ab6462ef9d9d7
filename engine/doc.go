// Package engine is streamd's core: shards of rooms, the wire protocol v1
// on top of netpoll, fan-out, room history for `join … since`, and the
// embedding API (New, Start, Publish, Subscribe, Close).
//
// # Ownership
//
// Rooms are split into shards by a hash of their name. Whoever holds a
// shard's mutex owns every room in it: in ModeRings that is the shard's
// worker goroutine, which takes the mutex once per batch of commands; in
// ModeInline it is the single event loop, once per message; an embedding
// API call (Publish, Subscribe) takes it for its own short turn. Nothing
// else reads or writes a room's shard-owned fields, so the hot path has no
// contended lock.
//
// Each event loop owns its sessions and, for every room, its view: the list
// of its own connections in that room (room.views[loop]). A shard never
// touches a session's fields or a view; it counts members per loop and
// sends each published message once to each loop that has members there.
//
// # Data flow (ModeRings)
//
//	loop ── command ring (SPSC, one per loop×shard) ──▶ worker (shard)
//	worker ── out ring (SPSC, one per shard×loop) + Loop.Wake ──▶ loop
//
// In ModeInline the same commands and outs are passed by direct calls.
// A join, leave and publish all travel to the room's shard; the answers
// (joined, left, ack) and deliveries come back on the same FIFO ring, so a
// client sees `joined`, then any replay, then live messages, in seq order.
//
// # Fan-out
//
// A published message is copied once (its data must outlive the read
// buffer: it goes into history) into a pooled, reference-counted Message.
// Each loop encodes the `message` frame at most once per variant
// (JSON or msgpack, plain or deflate) and queues the same bytes on every
// local member; netpoll writes each connection's batch joined, 64 KiB a write.
//
// # Authentication and permissions
//
// Each session has an identity (auth.go): anonymous, a verified JWT, or
// none yet (it must send an auth message). Tokens are verified on the
// session's loop with keys held in memory. Expiry and auth timeouts are
// deadlines in a per-loop list, swept when the engine's auth ticker sees
// the loop's earliest deadline pass: no timer per connection. Room
// permissions (permissions.go) are decided on the loop before a command
// goes to a shard; a publish is decided once per (session, room) and then
// costs a pointer comparison. docs/security.md is the operator's view.
//
// engine may import every other streamd package.
package engine

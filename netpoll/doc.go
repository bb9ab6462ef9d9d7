// Package netpoll is streamd's WebSocket transport: gnet/v2 event loops,
// the HTTP upgrade (gobwas/ws on gnet's inbound buffer), RFC 6455 framing and
// RFC 7692 permessage-deflate, heartbeats, limits and write coalescing.
//
// # What it owns
//
//   - The upgrade: the request head is parsed once it has arrived whole (a
//     head split across reads waits in gnet's buffer), bounded by
//     Options.MaxHeaderBytes and Options.HandshakeTimeout.
//   - Frames: decoded in place from the loop's inbound buffer. A single-frame
//     message reaches Handler.OnMessage as a slice of that buffer, unmasked in
//     place: no copy. Only fragmented messages are copied (into the
//     connection's assembly buffer) and compressed ones inflated (into the
//     loop's scratch buffer).
//   - Protocol faults close with the RFC 6455 code that fits: 1002 (unmasked
//     frame, reserved opcode or RSV bit, broken fragment sequence, bad close
//     frame), 1007 (invalid UTF-8 in text), 1009 (message over
//     Options.MaxMessageSize, also after inflating).
//   - Write coalescing: Conn.Write queues frames by reference; at the end of
//     each callback batch the loop flushes every connection written to, with
//     frames joined into writes of up to 64 KiB (not writev). Frames built
//     with Loop.BeginFrame/EndFrame or Loop.AppendMessageFrame live in a
//     per-loop arena that is recycled after the flush.
//   - Slow consumers: a connection whose unsent bytes pass
//     Options.WriteBufferLimit is dropped.
//   - Heartbeats: a connection silent for HeartbeatInterval gets a ping; one
//     silent for IdleTimeout is closed.
//   - TLS (Options.TLSAddr): a Go listener terminates TLS in front of the
//     loops and feeds each connection's plaintext to a loop through a
//     socketpair enrolled with gnet's Engine.Register (tls.go), so TLS
//     clients run through the same code as plain ones. CertFiles serves a
//     certificate that can be reloaded while connections stay open.
//
// # Concurrency
//
// Each connection belongs to one loop. Handler callbacks and every Conn and
// Loop method run on that loop's goroutine ("loop-only") unless the method
// says it is safe from any goroutine (Loop.Wake, Loop.Index, Conn.Loop,
// Server.Stats, Server.Shutdown, Server.TLSAddr). Other goroutines reach a loop by pushing
// work to a queue of their own and calling Loop.Wake; the loop then calls
// Handler.OnWake.
//
// netpoll knows nothing of rooms, sessions or the envelope: it must not
// import engine/, operators/ or state/.
package netpoll

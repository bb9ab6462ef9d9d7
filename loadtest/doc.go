// Package loadtest is streamd's open-loop load generator (cmd/streamload is
// its command line).
//
// # How it measures
//
// Sends follow a fixed schedule: a run of rate R spreads R messages per
// second evenly over its sending connections, and every message carries its
// scheduled send time (ns on the generator's monotonic clock, as 19 digits
// in data.t). Latency = arrival time − scheduled time, recorded in an
// HdrHistogram. A late send therefore counts against the result: the
// generator cannot hide a stall (no coordinated omission). Messages
// scheduled during the warm-up are delivered but not measured.
//
// # How it drives load
//
// Connections are opened and joined with blocking sockets, then handed as
// raw non-blocking fds to workers: one OS thread each, one epoll set, a
// periodic timerfd (Options.Tick) that batches the sends due, one write per
// connection per batch, and frame parsing straight out of one read buffer.
// Nothing is allocated per message. The generator reports its own CPU and
// marks a run where it was the limit (Result.GenLimited), so such a run is
// never mistaken for the server's limit.
//
// Scenarios: echo, fanout (with slow consumers), storm (drop and re-join
// with since, counting gaps), ramp (the highest rate under a p99 bound) and
// idle (RSS per connection). Everything talks to loopback only and is
// bounded in time.
//
// Backpressure (bench/backpressure.sh): echo with flooders (Options.Flood,
// flood.go) and the fairness scenario that alternates echo without and
// with them (fairness.go); flow, a producer that honours flow control
// flooding from a full bucket (flowonset.go); stall, a subscriber that
// stops reading in a room with a drop-oldest policy (stall.go); fanout
// with subscribers that read at a bounded byte rate (Options.SlowRead)
// and an exact account of every subscriber's seqs, gap notices included
// (Options.Count, account.go); the engine's own counters from its admin
// port (Options.Admin, admin.go); and the server's RSS every second with
// a least-squares slope (rss.go). Workers answer the server's pings, so a
// subscriber that only reads is not closed as idle after idle_timeout.
package loadtest

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
package loadtest

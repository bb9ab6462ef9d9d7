// Package bench holds the side-by-side load comparison: compare.sh runs
// streamd and the reference servers of bench/peers (a separate Go module,
// so gorilla/websocket, nbio, gnet+gobwas and centrifuge stay out of the
// engine's dependencies) under the same streamload scenarios, and
// RESULTS.md keeps reference runs. Micro-benchmarks live beside the code
// they measure (ring/, netpoll/, protocol/, engine/); `make bench` runs
// them all.
package bench

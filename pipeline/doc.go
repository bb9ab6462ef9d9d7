// Package pipeline compiles the pipelines of the YAML config into
// operators: it owns the config shape of a pipeline (Spec, NodeSpec), the
// expr-lang expressions nodes are written in (compiled once, with errors
// that point at the file's line and field), the registry of ops
// (filter, map, aggregate, router, debounce, … — docs/pipelines.md), the
// Event type config pipelines carry (one JSON value plus where it came
// from), and the outputs (room, reply, log, webhook).
//
// It builds on streamd/operators and knows nothing of sockets: whoever runs
// a pipeline (the engine) gives it a Host for the room and reply outputs,
// pushes Events into Pipeline.Input on the flow's goroutine, and drives the
// flow (Advance). It must not import netpoll/ or engine/.
//
// Events are immutable once made: a node that changes data makes a new
// slice, so operators may keep Events (windows, buffers) without copying
// their bytes. An Event's decoded form (for expressions) is computed once
// and shared by its copies.
package pipeline

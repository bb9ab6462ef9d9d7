// Package operators will hold the operator interface, the built-in operators
// (filter, map, aggregate over windows, router, debounce, buffer, dedup,
// retry, AI transforms) and the pipeline graph. It must never import
// netpoll/. Not yet implemented: see the pipelines issue.
package operators

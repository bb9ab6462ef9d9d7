// Package client will hold the Go streaming client (reconnect with backoff,
// heartbeats, offline queue, rooms re-joined with recovery). Not yet
// implemented: see the streaming clients issue.
package client

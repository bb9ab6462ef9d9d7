// nbio v1.6.8 hands connections from its accept goroutine to its pollers
// through epoll, which the race detector cannot see, so -race reports races
// inside nbio (nbhttp.Conn.RemoteAddr); the test runs without -race only.

//go:build !race

package main

import (
	"testing"

	"streamd/bench/peers/internal/peertest"
)

func TestSmoke(t *testing.T) {
	addr := peertest.FreeAddr(t)
	stop, err := start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	peertest.Smoke(t, addr)
}

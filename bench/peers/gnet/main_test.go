package main

import (
	"testing"
	"time"

	"streamd/bench/peers/internal/peertest"
)

func TestSmoke(t *testing.T) {
	addr := peertest.FreeAddr(t)
	s := newServer()
	errc := make(chan error, 1)
	go func() { errc <- s.run(addr) }()
	select {
	case <-s.booted:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("gnet did not boot")
	}
	defer s.stop()
	peertest.Smoke(t, addr)
}

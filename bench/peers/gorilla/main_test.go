package main

import (
	"net"
	"testing"

	"streamd/bench/peers/internal/peertest"
)

func TestSmoke(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln)
	peertest.Smoke(t, ln.Addr().String())
}

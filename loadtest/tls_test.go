package loadtest

import (
	"context"
	"testing"
	"time"

	"streamd/engine"
	"streamd/engine/enginetest"
	"streamd/internal/testcert"
)

// TestEchoOverTLS: the echo scenario over wss:// against an engine's TLS
// listener, trusting its certificate through ClientTLSConfig's --tls-ca
// path: every message comes back.
func TestEchoOverTLS(t *testing.T) {
	pair := testcert.New(t, 1, false)
	dir := t.TempDir()
	cf, kf := pair.Write(t, dir)
	e := enginetest.Start(t, engine.Config{TLS: engine.TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: kf}})
	addr, path, secure, err := ParseTarget("wss://"+e.TLSAddr().String()+"/ws", "/other")
	if err != nil || !secure || addr != e.TLSAddr().String() || path != "/ws" {
		t.Fatalf("ParseTarget: %q %q %v %v", addr, path, secure, err)
	}
	cfg, err := ClientTLSConfig("127.0.0.1", cf, false) // the self-signed cert is its own CA
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Scenario: "echo", Addr: addr, Path: path, TLS: cfg, Conns: 40, Rate: 400,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.Lost != 0 || res.Received == 0 || res.Received != res.Expected {
		t.Fatalf("sent %d, received %d of %d, lost %d", res.Sent, res.Received, res.Expected, res.Lost)
	}
	if st, _ := e.TLSStats(); st.HandshakeFailures != 0 {
		t.Fatalf("%d TLS handshake failures", st.HandshakeFailures)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, addr, path string
		secure, bad    bool
	}{
		{in: "127.0.0.1:8080", addr: "127.0.0.1:8080", path: "/ws"},
		{in: "ws://127.0.0.1:8080", addr: "127.0.0.1:8080", path: "/ws"},
		{in: "ws://127.0.0.1:8080/x?y=1", addr: "127.0.0.1:8080", path: "/x?y=1"},
		{in: "wss://localhost/ws", addr: "localhost:443", path: "/ws", secure: true},
		{in: "http://127.0.0.1:1", bad: true},
	} {
		addr, path, secure, err := ParseTarget(tc.in, "/ws")
		if (err != nil) != tc.bad || err == nil && (addr != tc.addr || path != tc.path || secure != tc.secure) {
			t.Errorf("%s: %q %q %v %v", tc.in, addr, path, secure, err)
		}
	}
}

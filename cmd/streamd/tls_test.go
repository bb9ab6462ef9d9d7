package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/internal/testcert"
)

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeTLSReload: serve with a tls block logs its wss address and
// serves wss clients; POST /reload and SIGHUP load a replaced certificate
// for new handshakes without dropping the open connection (file polling
// off, so only those two paths can have done it); a broken key is refused
// by /reload with the files named, and the current certificate stays.
func TestServeTLSReload(t *testing.T) {
	dir := t.TempDir()
	p1, p2, p3 := testcert.New(t, 1, false), testcert.New(t, 2, false), testcert.New(t, 3, true)
	certFile, keyFile := p1.Write(t, dir)
	tlsAddr := freePort(t)
	cfg := filepath.Join(dir, "c.yaml")
	src := fmt.Sprintf("auth: {anonymous: true}\ntls:\n  listen: %s\n  cert_file: %s\n  key_file: %s\n  reload_interval: -1s\n", tlsAddr, certFile, keyFile)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "validate", cfg); code != 0 {
		t.Fatalf("validate: %d %s%s", code, out, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, codec := serveInProcess(ctx, mapEnv(nil), "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--in-memory")
	_, admin := w.waitListening(t)
	clientCfg := testcert.ClientConfig(p1, p2, p3)
	d := websocket.Dialer{TLSClientConfig: clientCfg, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+tlsAddr+"/ws", nil)
	if err != nil {
		t.Fatalf("wss dial: %v\n%s", err, w.logSoFar())
	}
	defer c.Close()
	ping := func() {
		t.Helper()
		_ = c.WriteJSON(map[string]any{"type": "ping"})
		for {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("the wss client: %v", err)
			}
			if strings.Contains(string(b), `"pong"`) {
				return
			}
		}
	}
	serial := func() string {
		t.Helper()
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tlsAddr, clientCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	ping()
	if s := serial(); s != "1" {
		t.Fatalf("serial %s, want 1", s)
	}

	p2.Write(t, dir)
	if code, b := httpPost(t, admin+"/reload", ""); code != 200 {
		t.Fatalf("/reload: %d %s", code, b)
	}
	if s := serial(); s != "2" {
		t.Fatalf("after POST /reload: serial %s, want 2", s)
	}
	ping()

	testcert.WriteFile(t, keyFile, p1.KeyPEM) // p2's certificate with p1's key
	if code, b := httpPost(t, admin+"/reload", ""); code != 422 || !strings.Contains(b, "tls.cert_file and tls.key_file") || !strings.Contains(b, "does not match") {
		t.Fatalf("/reload with a mismatched key: %d %s", code, b)
	}
	if s := serial(); s != "2" {
		t.Fatalf("after a failed reload: serial %s, want 2 (kept)", s)
	}

	p3.Write(t, dir)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial() != "3" {
		if time.Now().After(deadline) {
			t.Fatalf("no new certificate after SIGHUP:\n%s", w.logSoFar())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ping()

	stopServe(t, cancel, codec, w)
	if c, err := net.DialTimeout("tcp", tlsAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the TLS port still accepts after serve stopped")
	}
}

// TestValidateTLSErrors: `streamd validate` refuses a tls block whose
// files are missing or do not match, naming the key to fix.
func TestValidateTLSErrors(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := testcert.New(t, 1, false), testcert.New(t, 2, false)
	certFile, _ := p1.Write(t, dir)
	other := filepath.Join(dir, "other.key")
	testcert.WriteFile(t, other, p2.KeyPEM)
	for _, tc := range []struct{ cert, key, want string }{
		{filepath.Join(dir, "nope.pem"), other, "tls.cert_file"},
		{certFile, other, "does not match"},
	} {
		cfg := filepath.Join(dir, "c.yaml")
		src := fmt.Sprintf("auth: {anonymous: true}\ntls: {listen: \"127.0.0.1:0\", cert_file: %q, key_file: %q}\n", tc.cert, tc.key)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := runCLI(t, "validate", cfg); code == 0 || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("validate %s/%s: exit %d, %s%s; want an error containing %q", tc.cert, tc.key, code, out, errOut, tc.want)
		}
	}
}

package engine

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"streamd/internal/testcert"
	"streamd/netpoll"
)

// tlsEngine is an engine with a TLS listener on a free loopback port and
// the certificate files it reads.
type tlsEngine struct {
	*Engine
	pair              *testcert.Pair
	dir               string
	certFile, keyFile string
}

func startTLSEngine(t *testing.T, mutate func(*Config)) *tlsEngine {
	t.Helper()
	return startTLSEngineKey(t, false, mutate)
}

// startTLSEngineKey is startTLSEngine with an RSA certificate if rsaKey
// (ECDSA P-256 otherwise).
func startTLSEngineKey(t *testing.T, rsaKey bool, mutate func(*Config)) *tlsEngine {
	t.Helper()
	te := &tlsEngine{pair: testcert.New(t, 1, rsaKey), dir: t.TempDir()}
	te.certFile, te.keyFile = te.pair.Write(t, te.dir)
	te.Engine = startEngine(t, func(c *Config) {
		c.TLS = TLSConfig{Listen: "127.0.0.1:0", CertFile: te.certFile, KeyFile: te.keyFile}
		if mutate != nil {
			mutate(c)
		}
	})
	return te
}

// dialTLS is dial over wss://, trusting cfg's roots.
func dialTLS(t testing.TB, e *Engine, cfg *tls.Config, compress bool) *client {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: cfg, EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+e.TLSAddr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t: t, ws: ws}
	if w := c.read(); w["type"] != "welcome" {
		t.Fatalf("first frame %v, want welcome", w)
	}
	return c
}

// peerSerial makes a TLS connection and returns the serial number of the
// certificate the server presented.
func peerSerial(t *testing.T, e *Engine, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.TLSAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSEchoAndPublish: wss clients speak the wire protocol as plain ones
// do, with and without permessage-deflate, and share rooms with them.
func TestTLSEchoAndPublish(t *testing.T) {
	modes(t, func(t *testing.T, mutate func(*Config)) {
		te := startTLSEngine(t, mutate)
		cfg := testcert.ClientConfig(te.pair)
		for _, compress := range []bool{false, true} {
			a := dialTLS(t, te.Engine, cfg, compress)
			b := dial(t, te.Engine, compress)
			room := fmt.Sprintf("tls-%v", compress)
			a.send(map[string]any{"type": "join", "room": room})
			a.expect("joined")
			b.send(map[string]any{"type": "join", "room": room})
			b.expect("joined")
			big := strings.Repeat("wss ", 10000) // many TLS records, compressible
			for i, data := range []any{"hello", big, map[string]any{"n": 1}} {
				from := a
				if i%2 == 1 {
					from = b
				}
				from.send(map[string]any{"type": "publish", "room": room, "data": data})
				for _, c := range []*client{a, b} {
					if m := c.read(); m["type"] != "message" || fmt.Sprint(m["data"]) != fmt.Sprint(data) {
						t.Fatalf("compress=%v msg %d: got %.200v", compress, i, m)
					}
				}
			}
			a.send(map[string]any{"type": "ping"})
			a.expect("pong")
		}
		if st, ok := te.TLSStats(); !ok || st.Connections < 2 {
			t.Fatalf("TLSStats = %+v, %v; want 2 open TLS connections", st, ok)
		}
	})
}

// TestTLSPerIPLimitCountsClientIP: max_connections_per_ip counts TLS
// clients under their own IP, together with plain ones.
func TestTLSPerIPLimitCountsClientIP(t *testing.T) {
	te := startTLSEngine(t, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	cfg := testcert.ClientConfig(te.pair)
	a := dialTLS(t, te.Engine, cfg, false)
	dialTLS(t, te.Engine, cfg, false)
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 3 * time.Second}
	if ws, _, err := d.Dial("wss://"+te.TLSAddr().String()+"/ws", nil); err == nil {
		ws.Close()
		t.Fatal("a 3rd TLS connection from 127.0.0.1 was accepted (max_connections_per_ip 2)")
	}
	if ws, resp, err := websocket.DefaultDialer.Dial("ws://"+te.Addr().String()+"/ws", nil); err == nil || resp == nil || resp.StatusCode != 429 {
		if ws != nil {
			ws.Close()
		}
		t.Fatalf("plain connection while 2 TLS ones fill the quota: %v, want HTTP 429", err)
	}
	a.ws.Close()
	waitFor(t, "the closed TLS connection's slot", func() bool {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+te.Addr().String()+"/ws", nil)
		if err == nil {
			ws.Close()
		}
		return err == nil
	})
}

// TestTLSJunkIsDropped: plain HTTP on the TLS port, a broken ClientHello,
// and a client that opens TCP and never handshakes are all dropped (the
// last at handshake_timeout) and counted, while a wss client is served.
func TestTLSJunkIsDropped(t *testing.T) {
	te := startTLSEngine(t, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	cfg := testcert.ClientConfig(te.pair)
	ok := dialTLS(t, te.Engine, cfg, false)
	junk := map[string][]byte{
		"plain HTTP":   []byte(upgradeReq),
		"bad hello":    append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, bytes.Repeat([]byte{0xEE}, 61)...),
		"silent":       nil,
		"half a hello": {0x16, 0x03, 0x01, 0x02, 0x00, 0x01},
	}
	start := time.Now()
	var wg sync.WaitGroup
	for name, b := range junk {
		nc, err := net.Dial("tcp", te.TLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if b != nil {
			_, _ = nc.Write(b)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 512)
			for {
				n, err := nc.Read(buf)
				if n > 0 && bytes.Contains(buf[:n], []byte("HTTP/1.1 101")) {
					t.Errorf("%s: upgraded", name)
				}
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Errorf("%s: still open after 10s (handshake_timeout 300ms)", name)
					} else if d := time.Since(start); d > 5*time.Second {
						t.Errorf("%s: dropped only after %v", name, d)
					}
					return
				}
			}
		}()
	}
	ok.send(map[string]any{"type": "ping"})
	ok.expect("pong")
	wg.Wait()
	ok.send(map[string]any{"type": "ping"})
	ok.expect("pong")
	waitFor(t, "4 TLS handshake failures counted", func() bool {
		st, _ := te.TLSStats()
		return st.HandshakeFailures >= 4
	})
	if st := te.Stats(); st.Connections != 1 {
		t.Fatalf("open connections = %d, want 1 (the wss client)", st.Connections)
	}
}

// TestTLSRefusesOldVersionsAndWeakSuites: TLS 1.0/1.1, TLS 1.2 with a
// non-AEAD suite (CBC, 3DES, RC4) or without ECDHE (RSA key exchange), and
// (with min_version 1.3) TLS 1.2 are refused; the allowed settings
// negotiate an AEAD suite. An RSA certificate, so every RSA suite could
// otherwise be picked.
func TestTLSRefusesOldVersionsAndWeakSuites(t *testing.T) {
	te := startTLSEngineKey(t, true, nil)
	roots := testcert.Pool(te.pair)
	try := func(e *Engine, c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs = roots
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.TLSAddr().String(), c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	refused := map[string]*tls.Config{
		"TLS 1.0":                {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		"TLS 1.1":                {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
		"TLS 1.2 ECDHE CBC":      {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}},
		"TLS 1.2 3DES, RC4":      {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_RC4_128_SHA}},
		"TLS 1.2 RSA kx AES-GCM": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
	}
	for name, c := range refused {
		if st, err := try(te.Engine, c); err == nil {
			t.Errorf("%s: accepted (version %x, suite %s)", name, st.Version, tls.CipherSuiteName(st.CipherSuite))
		}
	}
	for _, c := range []*tls.Config{
		{MaxVersion: tls.VersionTLS12},
		{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}},
		{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{MinVersion: tls.VersionTLS13},
	} {
		st, err := try(te.Engine, c)
		if err != nil {
			t.Fatalf("max version %x suites %v: %v", c.MaxVersion, c.CipherSuites, err)
		}
		name := tls.CipherSuiteName(st.CipherSuite)
		if !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20_POLY1305") {
			t.Errorf("negotiated %s: not AEAD", name)
		}
	}
	// min_version 1.3 refuses TLS 1.2.
	te13 := startTLSEngine(t, func(c *Config) { c.TLS.MinVersion = "1.3" })
	roots = testcert.Pool(te13.pair)
	if _, err := try(te13.Engine, &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("min_version 1.3 accepted a TLS 1.2 client")
	}
	if st, err := try(te13.Engine, &tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("min_version 1.3: %v, version %x", err, st.Version)
	}
}

// TestTLSCertReloadUnderLoad: 50 wss clients publish and receive in their
// rooms while the certificate and key files are replaced; none loses a
// message or its connection, new handshakes get the new certificate (by
// the file poll and by ReloadTLS), and a broken replacement keeps the
// current certificate and is counted.
func TestTLSCertReloadUnderLoad(t *testing.T) {
	te := startTLSEngine(t, func(c *Config) { c.TLS.ReloadInterval = 100 * time.Millisecond })
	next := testcert.New(t, 2, true) // RSA this time: a different key type too
	third := testcert.New(t, 3, false)
	cfg := testcert.ClientConfig(te.pair, next, third)
	const n = 50
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dialTLS(t, te.Engine, cfg, i%2 == 0)
		clients[i].send(map[string]any{"type": "join", "room": fmt.Sprintf("reload.%d", i)})
		clients[i].expect("joined")
	}
	var stop atomic.Bool
	sent := make([]int, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(2)
		room := fmt.Sprintf("reload.%d", i)
		go func() { // writer: one publish every 10 ms until stopped
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				b, _ := json.Marshal(map[string]any{"type": "publish", "room": room, "data": k})
				if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
					errs <- fmt.Errorf("client %d: write %d: %v", i, k, err)
					return
				}
				sent[i] = k + 1
				time.Sleep(10 * time.Millisecond)
			}
			b, _ := json.Marshal(map[string]any{"type": "publish", "room": room, "data": "end"})
			_ = c.ws.WriteMessage(websocket.TextMessage, b)
		}()
		go func() { // reader: every message, in order, up to "end"
			defer wg.Done()
			for want := 0; ; want++ {
				_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, b, err := c.ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("client %d: read after %d messages: %v", i, want, err)
					return
				}
				var m struct {
					Type string
					Data json.RawMessage
				}
				_ = json.Unmarshal(b, &m)
				if string(m.Data) == `"end"` {
					return
				}
				if m.Type != "message" || string(m.Data) != fmt.Sprint(want) {
					errs <- fmt.Errorf("client %d: got %s, want message %d", i, b, want)
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if s := peerSerial(t, te.Engine, cfg); s != "1" {
		t.Fatalf("serial before the reload: %s", s)
	}
	// 1. Replace both files: the poll picks the new pair up.
	next.Write(t, te.dir)
	waitFor(t, "new handshakes to present serial 2", func() bool { return peerSerial(t, te.Engine, cfg) == "2" })
	time.Sleep(200 * time.Millisecond)
	// 2. A broken replacement (the key file is not a key): kept, counted.
	before, _ := te.TLSStats()
	testcert.WriteFile(t, te.keyFile, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"))
	waitFor(t, "the broken key to be counted", func() bool {
		st, _ := te.TLSStats()
		return st.ReloadErrors > before.ReloadErrors
	})
	if s := peerSerial(t, te.Engine, cfg); s != "2" {
		t.Fatalf("after a broken key file the server presents serial %s, want 2 (kept)", s)
	}
	err := te.ReloadTLS()
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file and tls.key_file") {
		t.Fatalf("ReloadTLS with a broken key: %v, want an error naming the files", err)
	}
	// 3. ReloadTLS (SIGHUP, POST /reload) with a good pair, polling aside.
	testcert.WriteFile(t, te.certFile, third.CertPEM)
	testcert.WriteFile(t, te.keyFile, third.KeyPEM)
	if err := te.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if s := peerSerial(t, te.Engine, cfg); s != "3" {
		t.Fatalf("after ReloadTLS the server presents serial %s, want 3", s)
	}
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, k := range sent {
		total += k
	}
	st, _ := te.TLSStats()
	t.Logf("%d messages over %d wss clients across the reloads; %+v", total, n, st)
	if st.Reloads < 2 || st.ReloadErrors < 2 || total < 10*n {
		t.Fatalf("reloads %d ok / %d failed, %d messages: want ≥ 2, ≥ 2 (poll + ReloadTLS), ≥ %d", st.Reloads, st.ReloadErrors, total, 10*n)
	}
	if got := te.Stats().Connections; got != n {
		t.Fatalf("%d connections open after the reloads, want %d", got, n)
	}
	// The figures reach /metrics and the snapshot (alert rules).
	reg := prometheus.NewRegistry()
	reg.MustRegister(te.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["streamd_tls_reloads_total,ok"] != float64(st.Reloads) || got["streamd_tls_reloads_total,error"] != float64(st.ReloadErrors) ||
		got["streamd_tls_connections"] != n || got["streamd_tls_cert_not_after_timestamp_seconds"] != float64(third.Cert.NotAfter.Unix()) {
		t.Fatalf("/metrics: %v", got)
	}
	var sp sampler
	f := te.takeSnapshot(&sp).Flatten()
	if f["tls.reload_errors"] != float64(st.ReloadErrors) || f["tls.connections"] != n || f["tls.cert_expires_in_s"] < 3600 {
		t.Fatalf("snapshot: tls.* = %v %v %v", f["tls.reload_errors"], f["tls.connections"], f["tls.cert_expires_in_s"])
	}
}

// TestTLSShutdownStopsEverything: Close ends the TLS listener, every pump
// and every handshake in progress; no terminator goroutine is left.
func TestTLSShutdownStopsEverything(t *testing.T) {
	// Earlier tests' engines are closed; their last goroutines may be
	// returning from done().
	waitFor(t, "no TLS goroutine before the test", func() bool { return testcert.TLSGoroutines() == 0 })
	te := startTLSEngine(t, nil)
	cfg := testcert.ClientConfig(te.pair)
	var cs []*client
	for i := 0; i < 10; i++ {
		c := dialTLS(t, te.Engine, cfg, false)
		c.send(map[string]any{"type": "join", "room": "bye"})
		c.expect("joined")
		cs = append(cs, c)
	}
	silent, err := net.Dial("tcp", te.TLSAddr().String()) // in its handshake at Close
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "11 TLS connections", func() bool { st, _ := te.TLSStats(); return st.Connections == 11 })
	if n := testcert.TLSGoroutines(); n < 21 {
		t.Fatalf("%d TLS goroutines for 10 connections, a handshake and the listener; want 21", n)
	}
	addr := te.TLSAddr().String()
	stopEngine(t, te.Engine)
	for i, c := range cs {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ws.ReadMessage(); !websocket.IsCloseError(err, 1001) {
			t.Errorf("client %d at shutdown: %v, want close 1001", i, err)
		}
	}
	if st, _ := te.TLSStats(); st.Connections != 0 {
		t.Fatalf("%d TLS connections after Close", st.Connections)
	}
	// Close waited for every one to call done(); allow them to return.
	deadline := time.Now().Add(time.Second)
	for testcert.TLSGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d TLS goroutines 1s after Close", testcert.TLSGoroutines())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the TLS port accepts after Close")
	}
}

// TestTLSConfigErrors: the tls block's mistakes refuse the config, each
// naming its key and what to do.
func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := testcert.New(t, 1, false), testcert.New(t, 2, false)
	cf, kf := a.Write(t, dir)
	otherKey := dir + "/other.pem"
	testcert.WriteFile(t, otherKey, b.KeyPEM)
	garbage := dir + "/garbage.pem"
	testcert.WriteFile(t, garbage, []byte("not PEM at all"))
	cases := []struct {
		tls  TLSConfig
		want string
	}{
		{TLSConfig{CertFile: cf, KeyFile: kf}, "tls.listen is empty"},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: dir + "/missing.pem", KeyFile: kf}, `tls.cert_file "` + dir + `/missing.pem": open`},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: dir + "/nokey.pem"}, `tls.key_file "` + dir + `/nokey.pem"`},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: otherKey}, "private key does not match public key"},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: garbage}, "tls.cert_file and tls.key_file"},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf}, "tls.key_file is empty"},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: kf, MinVersion: "1.1"}, `tls.min_version "1.1"`},
		{TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: kf, ReloadInterval: time.Millisecond}, "tls.reload_interval"},
		{TLSConfig{Listen: "127.0.0.1:8080", CertFile: cf, KeyFile: kf}, "give TLS its own port"},
		{TLSConfig{Listen: "nope", CertFile: cf, KeyFile: kf}, `tls.listen "nope"`},
	}
	for _, tc := range cases {
		_, err := New(Config{Listen: "127.0.0.1:8080", TLS: tc.tls})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.tls, err, tc.want)
		}
	}
	good := Config{Listen: "127.0.0.1:0", TLS: TLSConfig{Listen: "127.0.0.1:0", CertFile: cf, KeyFile: kf}}
	good.Auth.Anonymous = true
	if _, err := New(good); err != nil {
		t.Fatalf("a good tls block: %v", err)
	}
}

// rawDialDeflate is rawDial with permessage-deflate negotiated, over TLS
// when cfg is set.
func rawDialDeflate(t *testing.T, addr string, cfg *tls.Config) *rawClient {
	t.Helper()
	var nc net.Conn
	var err error
	if cfg != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	} else {
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	req := strings.Replace(upgradeReq, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n", 1)
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if !strings.Contains(head.String(), "101") || !strings.Contains(head.String(), "permessage-deflate") {
		t.Fatalf("upgrade without deflate: %q", head.String())
	}
	if op, p := c.readFrame(); op != netpoll.OpText || !bytes.Contains(p, []byte(`"welcome"`)) {
		t.Fatalf("want welcome, got op %d %q", op, p)
	}
	return c
}

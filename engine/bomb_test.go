package engine

import (
	"bytes"
	"compress/flate"
	"crypto/tls"
	"testing"

	"streamd/internal/testcert"
	"streamd/netpoll"
)

// deflateMessage compresses p as one permessage-deflate message (RFC 7692
// §7.2.1: sync flush, the 00 00 ff ff tail removed).
func deflateMessage(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// TestDecompressionBombClosed1009: a client that negotiated
// permessage-deflate and sends a few KiB that inflate past max_message_size
// is closed with 1009 before anything reaches the engine, while a client
// connected at the same time keeps being served, over plain TCP and over
// TLS alike (netpoll/split_test.go has the unit-level version).
func TestDecompressionBombClosed1009(t *testing.T) {
	te := startTLSEngine(t, func(c *Config) {
		c.MaxMessageSize = 64 << 10
		c.MetricsInterval = -1 // no $sys.metrics publishes: Stats.Published counts only the test's
	})
	cfg := testcert.ClientConfig(te.pair)
	// 16 MiB of a valid JSON publish, compressed to about 16 KiB.
	body := append([]byte(`{"type":"publish","room":"bomb","data":"`), bytes.Repeat([]byte("A"), 16<<20)...)
	body = append(body, `"}`...)
	bomb := deflateMessage(t, body)
	t.Logf("bomb: %d bytes inflating to %d (limit %d)", len(bomb), len(body), 64<<10)
	for _, over := range []struct {
		name string
		cfg  *tls.Config
		addr string
	}{{"plain", nil, te.Addr().String()}, {"tls", cfg, te.TLSAddr().String()}} {
		t.Run(over.name, func(t *testing.T) {
			var ok *client
			if over.cfg != nil {
				ok = dialTLS(t, te.Engine, cfg, true)
			} else {
				ok = dial(t, te.Engine, true)
			}
			ok.send(map[string]any{"type": "join", "room": "bomb"})
			ok.expect("joined")
			before := te.Stats()
			c := rawDialDeflate(t, over.addr, over.cfg)
			// A small compressed message works on this connection first.
			c.frame(0xC1, deflateMessage(t, []byte(`{"type":"ping"}`)), true)
			if op, p := c.readFrame(); op != netpoll.OpText || !bytes.Contains(p, []byte("pong")) {
				t.Fatalf("compressed ping: op %d %q", op, p)
			}
			c.frame(0xC1, bomb, true) // FIN + RSV1 (compressed) + text
			if code := c.expectClose(); code != netpoll.CloseTooBig {
				t.Fatalf("close code %d, want 1009", code)
			}
			for i := 0; i < 3; i++ {
				ok.send(map[string]any{"type": "publish", "room": "bomb", "data": i})
				if m := ok.expect("message"); num(m["data"]) != uint64(i) {
					t.Fatalf("the other client got %v", m)
				}
			}
			after := te.Stats()
			if after.ProtocolErrors != before.ProtocolErrors+1 {
				t.Fatalf("protocol errors %d → %d, want +1", before.ProtocolErrors, after.ProtocolErrors)
			}
			if after.Published != before.Published+3 {
				t.Fatalf("published %d → %d: the bomb reached the engine", before.Published, after.Published)
			}
			// Answer the close: the server ends the connection.
			c.frame(0x88, []byte{0x03, 0xF1}, true)
			if op, _ := c.readFrame(); op != 0xFF {
				t.Fatalf("after the close handshake the server sent op %d, want EOF", op)
			}
		})
	}
}

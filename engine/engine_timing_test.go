package engine

import (
	"bufio"
	"io"
	"net"
	"streamd/netpoll"
	"strings"
	"testing"
	"time"
)

// BenchmarkEchoLoopback measures the whole per-message path of a real
// engine (read, decode, shard, history, fan-out encode, coalesced write)
// with one raw TCP client that writes pre-built frames and reads replies
// into a fixed buffer: the client allocates nothing, so allocs/op is the
// server's allocations per message. ns/op includes the loopback syscalls.
func BenchmarkEchoLoopback(b *testing.B) {
	for _, mode := range []string{ModeInline, ModeRings} {
		for _, metrics := range []string{MetricsMinimal, MetricsFull} {
			b.Run("mode="+mode+"/metrics="+metrics, func(b *testing.B) { benchEcho(b, mode, metrics, nil, upgradeReq) })
		}
	}
}

// BenchmarkEchoLoopbackAuth is BenchmarkEchoLoopback with an
// authenticated publisher under permission rules: the connection's JWT
// (HS256, with a rooms claim) comes in the upgrade's query, and a rule
// restricts who may publish into the room. The publish check is made
// once for the room, then remembered: ns/op and allocs/op should match
// BenchmarkEchoLoopback's.
func BenchmarkEchoLoopbackAuth(b *testing.B) {
	tok := hs(b, claims("bench", time.Hour, map[string]any{"roles": []string{"writer"},
		"rooms": map[string]any{"join": []string{"bench*"}, "publish": []string{"bench*"}}}))
	req := strings.Replace(upgradeReq, "GET /ws ", "GET /ws?token="+tok+" ", 1)
	auth := func(c *Config) {
		hmacAuth(c)
		c.Permissions = []PermissionRule{{Match: "bench*", Join: []string{"authenticated"}, Publish: []string{"role:writer"}}}
	}
	for _, mode := range []string{ModeInline, ModeRings} {
		for _, metrics := range []string{MetricsMinimal, MetricsFull} {
			b.Run("mode="+mode+"/metrics="+metrics, func(b *testing.B) { benchEcho(b, mode, metrics, auth, req) })
		}
	}
}

// benchEcho is one BenchmarkEchoLoopback case: metrics full vs minimal
// in the same run is what full detail costs per message. auth, when not
// nil, adds to the config; req is the upgrade request.
func benchEcho(b *testing.B, mode, metrics string, auth func(*Config), req string) {
	{
		{
			e := startEngine(b, func(c *Config) {
				c.Mode = mode
				c.Loops = 1
				c.Workers = 1
				c.Metrics = metrics
				if auth != nil {
					auth(c)
				}
			})
			nc, err := net.Dial("tcp", e.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 64<<10)
			_, _ = nc.Write([]byte(req))
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
			}
			skipFrames(b, br, 1) // welcome
			_, _ = nc.Write(frameBytes(0x81, []byte(`{"type":"join","room":"bench"}`)))
			expectFrame(b, br, `{"type":"joined"`)
			pub := frameBytes(0x81, []byte(`{"type":"publish","room":"bench","data":{"v":123,"s":"hello world, hello"}}`))
			_, _ = nc.Write(pub)
			expectFrame(b, br, `{"type":"message"`) // published, not refused
			const batch = 64
			var frames []byte
			for i := 0; i < batch; i++ {
				frames = append(frames, pub...)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(pub)))
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				if _, err := nc.Write(frames[:n*len(pub)]); err != nil {
					b.Fatal(err)
				}
				skipFrames(b, br, n)
			}
		}
	}
}

// expectFrame reads one small server frame and checks how it begins.
func expectFrame(b *testing.B, br *bufio.Reader, prefix string) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[1]&0x7F >= 126 {
		b.Fatalf("frame header % x: %v", hdr, err)
	}
	p := make([]byte, hdr[1]&0x7F)
	if _, err := io.ReadFull(br, p); err != nil || !strings.HasPrefix(string(p), prefix) {
		b.Fatalf("frame %q (%v), want %s…", p, err, prefix)
	}
}

// skipFrames reads and discards n server frames without allocating.
func skipFrames(b *testing.B, br *bufio.Reader, n int) {
	var hdr [10]byte
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			b.Fatal(err)
		}
		l := int(hdr[1] & 0x7F)
		if l == 126 {
			if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
				b.Fatal(err)
			}
			l = int(hdr[2])<<8 | int(hdr[3])
		}
		if _, err := br.Discard(l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetricsPerMessage is what metrics: full adds to each message
// on its path (one monotonic clock read and three histogram records; the
// other clock reads are per batch), to set against EchoLoopback's time
// per message.
func BenchmarkMetricsPerMessage(b *testing.B) {
	var ls loopState
	var sink int64
	t0 := netpoll.MonoNow()
	for i := 0; i < b.N; i++ {
		now := netpoll.MonoNow()
		ls.metrics.ingress.Record(now - t0)
		ls.metrics.fanout.Record(now - t0 + 100)
		ls.metrics.e2e.Record(now - t0 + 200)
		sink += now
	}
	_ = sink
}

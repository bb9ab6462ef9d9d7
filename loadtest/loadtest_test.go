package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// delayServer speaks the protocol subset the generator needs and answers
// every publish after a fixed delay: the generator must report that delay.
func delayServer(t *testing.T, delay time.Duration) string {
	t.Helper()
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var mu sync.Mutex
		send := func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			_ = c.WriteMessage(websocket.TextMessage, b)
		}
		send([]byte(`{"type":"welcome"}`))
		seq := 0
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				Type string          `json:"type"`
				Room string          `json:"room"`
				Data json.RawMessage `json:"data"`
			}
			if json.Unmarshal(p, &m) != nil {
				continue
			}
			switch m.Type {
			case "join":
				send([]byte(`{"type":"joined","room":` + strconv.Quote(m.Room) + `,"seq":0}`))
			case "publish":
				seq++
				out := []byte(`{"type":"message","room":` + strconv.Quote(m.Room) + `,"seq":` + strconv.Itoa(seq) + `,"data":` + string(m.Data) + `}`)
				time.AfterFunc(delay, func() { send(out) })
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestLatencyMatchesAKnownDelay validates the measuring stick: against a
// server that holds every message 20 ms, the reported percentiles must be
// 20 ms plus at most a few ms of transport and scheduling, never less.
func TestLatencyMatchesAKnownDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	addr := delayServer(t, delay)
	for _, burst := range []int{1, 3} {
		res, err := Run(context.Background(), Options{
			Scenario: "echo", Addr: addr, Conns: 40, Rate: 300, Burst: burst,
			Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Drain: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("burst %d: %s", burst, res.Summary())
		if res.Lost != 0 || res.Received != res.Expected || res.Sent < 500 {
			t.Fatalf("burst %d: sent %d, received %d of %d", burst, res.Sent, res.Received, res.Expected)
		}
		min := float64(res.Histogram().Min()) / 1000
		// Generous upper bounds: the race detector and a shared 2-core
		// machine add scheduling noise; the lower bound is exact.
		if min < 20 || res.P50ms < 20 || res.P50ms > 30 || res.P99ms > 80 {
			t.Fatalf("burst %d: min %.2f p50 %.2f p99 %.2f ms, want ≥ 20, p50 in [20, 30], p99 ≤ 80", burst, min, res.P50ms, res.P99ms)
		}
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	frame, off := buildPublish("room-1", 64)
	for _, v := range []int64{0, 1, 1234567890123, 9_223_372_036_854_775_807} {
		putTS(frame[off:], v)
		got, ok := parseTS(frame[off:])
		if !ok || got != v {
			t.Fatalf("put %d, parsed %d %v", v, got, ok)
		}
	}
	// The payload is valid JSON carrying data of about the asked size.
	p := frame[6:]
	var m struct{ Data json.RawMessage }
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("publish payload %q: %v", p, err)
	}
	if n := len(m.Data); n < 60 || n > 68 {
		t.Fatalf("data is %d bytes, want about 64", n)
	}
}

// TestFramesSplitAnywhere: the receive path reassembles frames cut at
// every byte.
func TestFramesSplitAnywhere(t *testing.T) {
	msg := func(ts int64) []byte {
		p := []byte(`{"type":"message","room":"r","seq":1,"data":{"t":"` + string(bytes.Repeat([]byte("0"), 19)) + `","p":"` + string(bytes.Repeat([]byte("x"), 200)) + `"}}`)
		i := bytes.Index(p, tsMarker) + len(tsMarker)
		putTS(p[i:], ts)
		h := []byte{0x81, 126, byte(len(p) >> 8), byte(len(p))}
		return append(h, p...)
	}
	stream := append(append(msg(5_000_000), []byte{0x89, 0}...), msg(6_000_000)...)
	for cut := 0; cut <= len(stream); cut++ {
		w := &worker{hist: newHistogram(), interval1s: newHistogram()}
		c := &lconn{fd: -1} // the ping's pong goes nowhere (not to fd 0)
		for _, part := range [][]byte{stream[:cut], stream[cut:]} {
			w.frames(c, part, 10_000_000)
		}
		if w.recv.Load() != 2 || len(c.in) != 0 {
			t.Fatalf("cut %d: received %d, left %d bytes", cut, w.recv.Load(), len(c.in))
		}
		if !w.hist.ValuesAreEquivalent(w.hist.Max(), 5000) || !w.hist.ValuesAreEquivalent(w.hist.Min(), 4000) {
			t.Fatalf("cut %d: latencies %d..%d µs, want 4000..5000", cut, w.hist.Min(), w.hist.Max())
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := Run(context.Background(), Options{Scenario: "echo", Addr: "10.0.0.1:80"}); err == nil {
		t.Fatal("a non-loopback address was accepted")
	}
}

func TestEventFrameCarriesTheTimestamp(t *testing.T) {
	frame, off := buildEvent("s", 64)
	putTS(frame[off:], 42)
	var m struct {
		Type, Stream string
		Data         struct{ T string }
	}
	if err := json.Unmarshal(frame[6:], &m); err != nil || m.Type != "event" || m.Stream != "s" || m.Data.T != "0000000000000000042" {
		t.Fatalf("event frame %q: %+v %v", frame[6:], m, err)
	}
}

package loadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"streamd/engine"
	"streamd/engine/enginetest"
)

func startEngine(t *testing.T) string {
	t.Helper()
	return newEngine(t).Addr().String()
}

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	return enginetest.Start(t, engine.Config{WriteBufferLimit: 64 << 10})
}

// TestStormAgainstTheEngine: a third of the subscribers drop at once and
// re-join with since; none may miss a message.
func TestStormAgainstTheEngine(t *testing.T) {
	addr := startEngine(t)
	res, err := Run(context.Background(), Options{Scenario: "storm", Addr: addr, Subscribers: 200, Rooms: 20, Rate: 400,
		DropShare: 0.3, Duration: 3 * time.Second, Warmup: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.Reconnected != 60 || res.ReconnectFailures != 0 {
		t.Fatalf("reconnected %d (%d failed), want 60", res.Reconnected, res.ReconnectFailures)
	}
	if res.Lost != 0 || res.Gaps != 0 || res.Unrecovered != 0 {
		t.Fatalf("lost %d, gaps %d, recovered:false %d: want none", res.Lost, res.Gaps, res.Unrecovered)
	}
}

// TestFanoutWithSlowConsumers: subscribers that never read are dropped by
// the engine; the others get everything.
func TestFanoutWithSlowConsumers(t *testing.T) {
	e := newEngine(t)
	addr := e.Addr().String()
	// Drain 5 s: on a 2-core CI machine running other packages' tests at
	// the same time, deliveries can lag seconds; the test is about drops.
	res, err := Run(context.Background(), Options{Scenario: "fanout", Addr: addr, Subscribers: 100, Slow: 5, Publishers: 2,
		Rate: 200, Size: 16000, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Drain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.Lost != 0 || res.Received != res.Expected || res.Expected != res.Sent*95 {
		t.Fatalf("sent %d, received %d of %d (want 95 readers each getting everything)", res.Sent, res.Received, res.Expected)
	}
	if d := e.Stats().SlowConsumerDrops; d != 5 {
		t.Fatalf("the engine dropped %d slow consumers, want the 5 that never read", d)
	}
}

func TestIdleAgainstTheEngine(t *testing.T) {
	addr := startEngine(t)
	res, err := Idle(context.Background(), IdleOptions{Addr: addr, Conns: 300, Rooms: 7, Hold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 300 || res.Failed != 0 {
		t.Fatalf("%s", res)
	}
}

// TestPipelineWithoutPipelinesReportsErrors: until a pipeline reads the
// stream, the engine answers every event with an error; the generator
// reports it instead of silently counting losses.
func TestPipelineWithoutPipelinesReportsErrors(t *testing.T) {
	addr := startEngine(t)
	res, err := Run(context.Background(), Options{Scenario: "pipeline", Addr: addr, Conns: 10, Rate: 100,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Drain: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorAnswers == 0 || !strings.Contains(res.FirstError, "unknown_stream") || res.Received != 0 {
		t.Fatalf("errors %d (%q), received %d", res.ErrorAnswers, res.FirstError, res.Received)
	}
}

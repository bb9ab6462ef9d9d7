package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"streamd/operators"
)

// start is the fake clock's start; at(k) is k seconds later in Unix ms.
var start = time.Unix(1_000_000, 0)

func at(k int) int64 { return start.Add(time.Duration(k) * time.Second).UnixMilli() }

// harness is an Evaluator on a fake clock that records its events and logs.
type harness struct {
	t      *testing.T
	clock  *operators.FakeClock
	e      *Evaluator
	events []Event
	logs   bytes.Buffer
	k      int // seconds since start
}

func newHarness(t *testing.T, rules ...Rule) *harness {
	t.Helper()
	h := &harness{t: t, clock: operators.NewFakeClock(start)}
	e, err := New(Options{
		Rules:     rules,
		Clock:     h.clock,
		Notifiers: []Notifier{NotifierFunc(func(ev Event) { h.events = append(h.events, ev) })},
		Logger:    slog.New(slog.NewTextHandler(&h.logs, &slog.HandlerOptions{ReplaceAttr: dropTime})),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	return h
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// feed evaluates metric m at each value, one second apart, and returns the
// events as "STATE@SECOND" strings.
func (h *harness) feed(m string, values ...float64) []string {
	h.t.Helper()
	n := len(h.events)
	for _, v := range values {
		h.eval(map[string]float64{m: v})
	}
	return h.since(n)
}

func (h *harness) eval(values map[string]float64) {
	h.clock.Set(start.Add(time.Duration(h.k) * time.Second).UnixNano())
	h.e.Eval(values)
	h.k++
}

func (h *harness) since(n int) []string {
	var out []string
	for _, ev := range h.events[n:] {
		out = append(out, fmt.Sprintf("%s@%d", ev.State, (ev.At-at(0))/1000))
	}
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func TestForNeedsContinuousMatch(t *testing.T) {
	h := newHarness(t, Rule{Name: "hot", Metric: "m", Op: ">", Threshold: 10, For: 3 * time.Second})
	// t:  0   1   2  3  4   5   6   7
	got := h.feed("m", 11, 11, 9, 11, 11, 11, 11, 11)
	// The dip at 2 restarts the wait: matching from 3, fires at 3+3 = 6.
	eq(t, "events", got, []string{"firing@6"})
	ev := h.events[0]
	if ev.Since != at(6) || ev.Value != 11 || ev.Threshold != 10 || ev.Severity != SeverityWarning {
		t.Errorf("firing event = %+v", ev)
	}
}

func TestForZeroFiresAtOnce(t *testing.T) {
	h := newHarness(t, Rule{Name: "hot", Metric: "m", Op: ">", Threshold: 10})
	eq(t, "events", h.feed("m", 5, 11, 12, 9, 11), []string{"firing@1", "resolved@3", "firing@4"})
}

func TestResolveAfterPreventsFlapping(t *testing.T) {
	h := newHarness(t, Rule{Name: "hot", Metric: "m", Op: ">", Threshold: 10, ResolveAfter: 3 * time.Second})
	eq(t, "fire", h.feed("m", 11), []string{"firing@0"})
	// Around the threshold: every match restarts the resolve wait.
	eq(t, "flap", h.feed("m", 9, 11, 9, 9, 11, 9, 9, 11), nil)
	// t = 9…: continuously below from 9, resolves at 12.
	eq(t, "resolve", h.feed("m", 9, 9, 9, 9), []string{"resolved@12"})
	ev := h.events[1]
	if ev.State != StateResolved || ev.Since != at(0) || ev.At != at(12) || ev.Value != 9 {
		t.Errorf("resolved event = %+v", ev)
	}
	if f := h.e.Firing(); len(f) != 0 {
		t.Errorf("Firing after resolve = %+v", f)
	}
}

func TestResolveAfterDefaultsToFor(t *testing.T) {
	h := newHarness(t, Rule{Name: "hot", Metric: "m", Op: ">=", Threshold: 10, For: 2 * time.Second})
	// Fires at 2 (matching 0,1,2); below from 3, resolves at 5.
	eq(t, "events", h.feed("m", 10, 10, 10, 1, 1, 1), []string{"firing@2", "resolved@5"})
	// After resolving, a new match waits For again.
	eq(t, "again", h.feed("m", 10, 10, 10), []string{"firing@8"})
}

func TestClearThreshold(t *testing.T) {
	clear := 8.0
	h := newHarness(t, Rule{Name: "hot", Metric: "m", Op: ">", Threshold: 10, Clear: &clear})
	eq(t, "fire", h.feed("m", 11), []string{"firing@0"})
	eq(t, "between", h.feed("m", 9, 10, 8.5), nil)         // > 8: still firing
	eq(t, "clear", h.feed("m", 8), []string{"resolved@4"}) // 8 > 8 is false
	eq(t, "no refire", h.feed("m", 9, 10), nil)            // not > 10
	eq(t, "refire", h.feed("m", 10.5), []string{"firing@7"})
	if ev := h.events[0]; ev.Clear == nil || *ev.Clear != 8 {
		t.Errorf("event Clear = %v, want 8", ev.Clear)
	}

	// Below-threshold rules clear upward.
	clear = 20
	h = newHarness(t, Rule{Name: "cold", Metric: "m", Op: "<", Threshold: 10, Clear: &clear, ResolveAfter: time.Second})
	clear = 99 // New copied it
	eq(t, "below", h.feed("m", 5, 15, 25, 15, 25, 25), []string{"firing@0", "resolved@5"})
}

func TestOps(t *testing.T) {
	for _, tc := range []struct {
		op                 string
		below, equal, over bool
	}{
		{">", false, false, true},
		{">=", false, true, true},
		{"<", true, false, false},
		{"<=", true, true, false},
		{"==", false, true, false},
		{"!=", true, false, true},
	} {
		t.Run(tc.op, func(t *testing.T) {
			for _, c := range []struct {
				v    float64
				want bool
			}{{9, tc.below}, {10, tc.equal}, {11, tc.over}} {
				h := newHarness(t, Rule{Name: "r", Metric: "m", Op: tc.op, Threshold: 10})
				got := len(h.feed("m", c.v)) == 1
				if got != c.want {
					t.Errorf("%v %s 10: fired = %v, want %v", c.v, tc.op, got, c.want)
				}
			}
			if compare(tc.op, math.NaN(), 10) {
				t.Errorf("NaN %s 10 matched", tc.op)
			}
		})
	}
}

func TestMissingMetric(t *testing.T) {
	h := newHarness(t, Rule{Name: "lat", Metric: "latency.e2e.p99", Op: ">", Threshold: 100, ResolveAfter: 2 * time.Second})
	h.eval(map[string]float64{"latency.e2e.p999": 500, "latency.e2e.p90": 500, "connections.open": 3})
	h.eval(map[string]float64{"latency.e2e.p999": 500})
	logs := h.logs.String()
	if n := strings.Count(logs, "metric not reported"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, `close_names="latency.e2e.p90, latency.e2e.p999"`) || !strings.Contains(logs, "rule=lat") {
		t.Errorf("log = %s", logs)
	}
	if len(h.events) != 0 {
		t.Fatalf("missing metric fired: %+v", h.events)
	}

	// Reported: fires; missing again: resolves after ResolveAfter, keeping
	// the last value, and is logged again.
	h.logs.Reset()
	eq(t, "fire", h.feed("latency.e2e.p99", 150), []string{"firing@2"})
	for range 3 {
		h.eval(nil)
	}
	eq(t, "resolve", h.since(1), []string{"resolved@5"})
	if v := h.events[1].Value; v != 150 {
		t.Errorf("resolved value = %v, want the last seen, 150", v)
	}
	if n := strings.Count(h.logs.String(), "metric not reported"); n != 1 {
		t.Errorf("logged %d times after it went missing again, want once", n)
	}
}

func TestNaNDoesNotMatch(t *testing.T) {
	h := newHarness(t, Rule{Name: "r", Metric: "m", Op: "!=", Threshold: 0})
	eq(t, "nan", h.feed("m", math.NaN()), nil)
	eq(t, "fire", h.feed("m", 1), []string{"firing@1"})
	eq(t, "nan resolves", h.feed("m", math.NaN()), []string{"resolved@2"})
	if v := h.events[1].Value; v != 1 {
		t.Errorf("value after NaN = %v, want the last number seen, 1", v)
	}
}

func TestFiring(t *testing.T) {
	h := newHarness(t,
		Rule{Name: "a", Metric: "x", Op: ">", Threshold: 1, Severity: SeverityCritical, Message: "x high", Action: "lower x"},
		Rule{Name: "b", Metric: "y", Op: ">", Threshold: 1},
		Rule{Name: "c", Metric: "x", Op: ">", Threshold: 5, For: time.Hour},
	)
	h.eval(map[string]float64{"x": 2, "y": 0})
	h.eval(map[string]float64{"x": 7, "y": 3})
	f := h.e.Firing()
	if len(f) != 2 || f[0].Rule != "a" || f[1].Rule != "b" {
		t.Fatalf("Firing = %+v, want a and b", f)
	}
	want := Event{Rule: "a", State: StateFiring, Severity: SeverityCritical, Metric: "x", Op: ">", Value: 7, Threshold: 1,
		Message: "x high", Action: "lower x", At: at(1), Since: at(0)}
	if fmt.Sprint(f[0]) != fmt.Sprint(want) {
		t.Errorf("Firing()[0] = %+v\nwant %+v", f[0], want)
	}
	if f[1].Since != at(1) {
		t.Errorf("b Since = %d, want %d", f[1].Since, at(1))
	}
	h.eval(map[string]float64{"x": 0, "y": 3})
	if f := h.e.Firing(); len(f) != 1 || f[0].Rule != "b" {
		t.Errorf("Firing = %+v, want b only", f)
	}
}

// Firing and Rules may be called while Eval runs (go test -race).
func TestFiringConcurrent(t *testing.T) {
	h := newHarness(t, Rule{Name: "a", Metric: "x", Op: ">", Threshold: 1})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.e.Firing()
				_ = h.e.Rules()
			}
		}
	}()
	for i := range 2000 {
		h.eval(map[string]float64{"x": float64(i % 3)})
	}
	close(stop)
	wg.Wait()
}

func TestRulesDefaults(t *testing.T) {
	clear := 3.0
	h := newHarness(t, Rule{Name: "a", Metric: "x", Op: ">", Threshold: 5, For: time.Minute, Clear: &clear})
	r := h.e.Rules()
	if r[0].Severity != SeverityWarning || r[0].ResolveAfter != time.Minute || *r[0].Clear != 3 || r[0].Clear == &clear {
		t.Errorf("Rules()[0] = %+v", r[0])
	}
	*r[0].Clear = 100 // the caller's copy
	if c := h.e.Rules()[0].Clear; *c != 3 {
		t.Errorf("Rules shares Clear with the caller: %v", *c)
	}
	if s := r[0].String(); s != "x > 5 for 1m0s (clear 100)" {
		t.Errorf("String = %q", s)
	}
}

func TestEventJSON(t *testing.T) {
	h := newHarness(t, Rule{Name: "inf", Metric: "m", Op: ">", Threshold: 1, Message: "m", Action: "a"})
	h.feed("m", math.Inf(1))
	b, err := json.Marshal(h.events[0])
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"rule":"inf","state":"firing","severity":"warning","metric":"m","op":"\u003e","value":1.7976931348623157e+308,"threshold":1,"message":"m","action":"a","at":%d,"since":%d}`, at(0), at(0))
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
}

func TestCloseNames(t *testing.T) {
	values := map[string]float64{"messages.in_per_s": 1, "messages.out_per_s": 1, "messages.in_per_s_1m": 1, "rooms": 1}
	got := closeNames("mesages.in_per_s", values, 3)
	eq(t, "close", got, []string{"messages.in_per_s", "messages.in_per_s_1m", "messages.out_per_s"})
	if got := closeNames("zzz", values, 3); len(got) != 0 {
		t.Errorf("closeNames(zzz) = %q", got)
	}
}

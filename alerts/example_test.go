package alerts_test

import (
	"fmt"
	"time"

	"streamd/alerts"
	"streamd/operators"
)

// A latency rule on a fake clock, evaluated once a second: it fires after
// 3s above 250ms and resolves after 3s at or below its clear level, 200ms.
// The dip to 240 neither resolves it (still above 200) nor restarts
// anything; the single 210 at t=7 restarts the resolve wait.
func Example() {
	start := time.Unix(1_700_000_000, 0)
	clock := operators.NewFakeClock(start)
	e, err := alerts.New(alerts.Options{
		Rules: []alerts.Rule{{
			Name:      "e2e_latency",
			Metric:    "latency.e2e.p99",
			Op:        ">",
			Threshold: 250,
			Clear:     new(200.0),
			For:       3 * time.Second,
			Severity:  alerts.SeverityCritical,
			Message:   "end-to-end p99 latency above 250ms",
		}},
		Clock: clock,
		Notifiers: []alerts.Notifier{alerts.NotifierFunc(func(ev alerts.Event) {
			fmt.Printf("t=%ds %s %s value=%g (firing since t=%ds)\n",
				(ev.At-start.UnixMilli())/1000, ev.Rule, ev.State, ev.Value, (ev.Since-start.UnixMilli())/1000)
		})},
	})
	if err != nil {
		panic(err)
	}
	// t:           0    1    2    3    4    5    6    7    8    9   10   11
	for _, p99 := range []float64{100, 300, 320, 310, 305, 240, 190, 210, 180, 170, 150, 120} {
		e.Eval(map[string]float64{"latency.e2e.p99": p99})
		if clock.Now() == start.Add(5*time.Second).UnixNano() {
			fmt.Println("firing:", len(e.Firing()))
		}
		clock.Add(time.Second)
	}
	fmt.Println("firing:", len(e.Firing()))
	// Output:
	// t=4s e2e_latency firing value=305 (firing since t=4s)
	// firing: 1
	// t=11s e2e_latency resolved value=120 (firing since t=4s)
	// firing: 0
}

package loadtest

import (
	"context"
	"fmt"
	"io"
	"time"
)

// RampOptions find the highest rate a scenario sustains: Base is run at
// Start msgs/s, then at Start×Factor, … up to Max, and the ramp stops at the
// first step whose p99 exceeds P99Bound, that loses messages, or where the
// generator was the limit.
type RampOptions struct {
	Base     Options
	Start    float64       // default 10,000
	Factor   float64       // default 1.25
	Max      float64       // default 2,000,000
	P99Bound time.Duration // default 10 ms
	Log      io.Writer     // a line per step
}

// RampResult lists every step and the best one that passed.
type RampResult struct {
	Steps []*Result `json:"steps"`
	Best  *Result   `json:"best"`
	Why   string    `json:"stopped_because"`
}

// Ramp runs the steps; each step opens its connections afresh.
func Ramp(ctx context.Context, o RampOptions) (*RampResult, error) {
	if o.Start == 0 {
		o.Start = 10_000
	}
	if o.Factor == 0 {
		o.Factor = 1.25
	}
	if o.Factor <= 1 {
		return nil, fmt.Errorf("loadtest: ramp --factor %v must be above 1", o.Factor)
	}
	if o.Max == 0 {
		o.Max = 2_000_000
	}
	if o.P99Bound == 0 {
		o.P99Bound = 10 * time.Millisecond
	}
	out := &RampResult{}
	for rate := o.Start; rate <= o.Max; rate *= o.Factor {
		step := o.Base
		step.Rate = rate
		step.Progress = nil
		res, err := Run(ctx, step)
		if err != nil && res == nil {
			return out, err
		}
		out.Steps = append(out.Steps, res)
		if o.Log != nil {
			fmt.Fprintf(o.Log, "ramp: %9.0f msgs/s  p99 %8.3f ms  lost %d  gen %.2f cores%s\n",
				rate, res.P99ms, res.Lost, res.GenCPUCores, map[bool]string{true: "  (generator-limited)"}[res.GenLimited])
		}
		switch {
		case res.GenLimited:
			out.Why = fmt.Sprintf("the generator was the limit at %.0f msgs/s (%s)", rate, res.GenLimitedWhy)
		case res.Lost > 0:
			out.Why = fmt.Sprintf("%d messages lost at %.0f msgs/s", res.Lost, rate)
		case res.P99ms > float64(o.P99Bound)/float64(time.Millisecond):
			out.Why = fmt.Sprintf("p99 %.2f ms over %v at %.0f msgs/s", res.P99ms, o.P99Bound, rate)
		default:
			out.Best = res
			continue
		}
		return out, nil
	}
	out.Why = fmt.Sprintf("reached --max %.0f msgs/s", o.Max)
	return out, nil
}

package pipeline

import (
	"streamd/operators"
)

func init() { extraBuiltins = append(extraBuiltins, registerReactive) }

func registerReactive(r *Registry) {
	r.Register("debounce", OpDef{
		Doc:    "emits the last event of each burst once `duration` has passed without a new one (per `key` when given)",
		Fields: []string{"duration", "key"},
		Build: func(c *BuildContext) (operators.Node, error) {
			if c.Node.Duration <= 0 {
				return nil, c.Errorf("duration", "op debounce needs duration > 0")
			}
			key, err := c.OptExpr("key", c.Node.Key)
			if err != nil {
				return nil, err
			}
			if key == nil {
				return operators.NewDebounce[Event](c.Node.Name, c.Node.Duration)
			}
			return operators.NewDebounceBy(c.Node.Name, c.Node.Duration, keyFunc(key))
		},
	})
	r.Register("throttle", OpDef{
		Doc:    "emits the first event, then drops the others for `duration` (with `trailing: true`, also the last dropped one when the interval ends)",
		Fields: []string{"duration", "trailing"},
		Build: func(c *BuildContext) (operators.Node, error) {
			if c.Node.Duration <= 0 {
				return nil, c.Errorf("duration", "op throttle needs duration > 0")
			}
			if c.Node.Trailing {
				return operators.NewThrottleTrailing[Event](c.Node.Name, c.Node.Duration)
			}
			return operators.NewThrottle[Event](c.Node.Name, c.Node.Duration)
		},
	})
	r.Register("dedup", OpDef{
		Doc:    "drops an event whose `key` passed within the last `duration`; at most `max` keys are remembered (default 65536, oldest evicted)",
		Fields: []string{"key", "duration", "max"},
		Build: func(c *BuildContext) (operators.Node, error) {
			key, err := c.Expr("key", c.Node.Key, false)
			if err != nil {
				return nil, err
			}
			if c.Node.Duration <= 0 {
				return nil, c.Errorf("duration", "op dedup needs duration > 0")
			}
			return operators.NewDedup(c.Node.Name, keyFunc(key), c.Node.Duration, c.Node.Max)
		},
	})
	r.Register("buffer", OpDef{
		Doc:    "groups every `count` events into one event whose data is the array of their data",
		Fields: []string{"count"},
		Build: func(c *BuildContext) (operators.Node, error) {
			if c.Node.Count <= 0 {
				return nil, c.Errorf("count", "op buffer needs count > 0")
			}
			b, err := operators.NewBuffer[Event](c.Node.Name, c.Node.Count)
			if err != nil {
				return nil, err
			}
			return adapt(b, joinEvents), nil
		},
	})
	r.Register("buffer_time", OpDef{
		Doc:    "groups the events of each `duration` (and at most `max` per group) into one event whose data is the array of their data; empty intervals emit nothing",
		Fields: []string{"duration", "max"},
		Build: func(c *BuildContext) (operators.Node, error) {
			if c.Node.Duration <= 0 {
				return nil, c.Errorf("duration", "op buffer_time needs duration > 0")
			}
			b, err := operators.NewBufferTime[Event](c.Node.Name, c.Node.Duration, c.Node.Max)
			if err != nil {
				return nil, err
			}
			return adapt(b, joinEvents), nil
		},
	})
}

// keyFunc turns a key expression into a key function (an error gives "").
func keyFunc(x *Expr) func(Event) string {
	return func(ev Event) string {
		k, _ := x.String(&ev)
		return k
	}
}

// joinEvents makes one event of a group: data is the JSON array of the
// events' data, time the last one's, and the sender kept when they all
// share one.
func joinEvents(group []Event) Event {
	n := 2
	for i := range group {
		n += len(group[i].Data) + 1
	}
	data := make([]byte, 0, n)
	data = append(data, '[')
	for i := range group {
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, group[i].Data...)
	}
	data = append(data, ']')
	if len(group) == 0 {
		return NewEvent("", data, 0)
	}
	last := group[len(group)-1]
	ev := NewEvent(last.Stream, data, last.Time)
	ev.Origin, ev.ID = group[0].Origin, group[0].ID
	for i := range group {
		if group[i].Origin != ev.Origin {
			ev.Origin, ev.ID = nil, nil
			break
		}
	}
	return ev
}

package pipeline

import (
	"encoding/json"
	"strconv"

	"streamd/protocol"
)

// Event is what flows through a config pipeline: one JSON value (Data)
// and where it came from.
//
// Data is immutable once the event exists: a node that changes it (a map
// that sets fields) makes a new slice, so every copy of an Event may keep
// its Data as long as it likes. Copies of an Event share one lazily
// decoded form of Data, which expressions read.
type Event struct {
	// Stream is the input stream the event came in on.
	Stream string
	// Data is the event's data, one JSON value.
	Data []byte
	// Time is the event's time in Unix nanoseconds: its arrival time, or
	// the value of the pipeline's time expression (event time).
	Time int64
	// Key is the group key a keyed node (aggregate) gave the event.
	Key string
	// ID is the request id of the event message, echoed in its result.
	ID []byte
	// Origin is who sent the event (the engine's session), for `reply`;
	// nil for events from a generator, a file or /ingest.
	Origin any

	val *decoded
}

// decoded is Data decoded for expressions, shared by an event's copies.
type decoded struct {
	v    any
	err  error
	done bool
}

// NewEvent returns an event carrying data (kept, not copied: the caller
// gives it up), read at time t.
func NewEvent(stream string, data []byte, t int64) Event {
	return Event{Stream: stream, Data: data, Time: t, val: new(decoded)}
}

// WithData returns a copy of e carrying data instead (and its own decoded
// form, v when the caller has it already).
func (e Event) WithData(data []byte, v any) Event {
	e.Data = data
	e.val = &decoded{v: v, done: v != nil}
	return e
}

// Value returns Data decoded (objects as map[string]any, numbers as
// float64), decoding it on first use.
func (e *Event) Value() (any, error) {
	if e.val == nil {
		e.val = new(decoded)
	}
	d := e.val
	if !d.done {
		d.done = true
		d.v, d.err = protocol.DecodeJSONValue(e.Data)
	}
	return d.v, d.err
}

// setFields returns a copy of the JSON object obj with each of keys set
// to the matching raw JSON value: members that exist keep their place
// (their value replaced), new ones are appended. Every other member is
// copied byte for byte. obj that is not an object (null, a number) is
// replaced by a new object.
func setFields(obj []byte, keys []string, vals [][]byte) []byte {
	n := len(obj) + 2
	for i := range keys {
		n += len(keys[i]) + len(vals[i]) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	done := make([]bool, len(keys))
	first := true
	err := protocol.ForEachMember(obj, func(k []byte, s, e int) bool {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, k...)
		out = append(out, '"', ':')
		v := obj[s:e]
		for i, key := range keys {
			if !done[i] && string(k) == key {
				v, done[i] = vals[i], true
				break
			}
		}
		out = append(out, v...)
		return true
	})
	if err != nil {
		out, first = append(out[:0], '{'), true
		clear(done)
	}
	for i, key := range keys {
		if done[i] {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendJSONString(out, key)
		out = append(out, ':')
		out = append(out, vals[i]...)
	}
	return append(out, '}')
}

// marshal encodes an expression's result as JSON.
func marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return []byte("null"), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case float64:
		return appendFloat(nil, x), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case string:
		return json.Marshal(x)
	}
	return json.Marshal(v)
}

// appendFloat appends f as JSON (NaN and ±Inf, which JSON lacks, as null).
func appendFloat(dst []byte, f float64) []byte {
	if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	return protocol.AppendJSONString(dst, []byte(s))
}

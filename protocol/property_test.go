package protocol

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// jsonValueGen draws values encoding/json and vmihailenco/msgpack can both
// marshal: nil, bool, int64, uint64, finite float64, string, and up to depth
// levels of []any and map[string]any.
func jsonValueGen(depth int) *rapid.Generator[any] {
	gens := []*rapid.Generator[any]{
		rapid.Just[any](nil),
		rapid.Map(rapid.Bool(), func(v bool) any { return v }),
		rapid.Map(rapid.Int64(), func(v int64) any { return v }),
		rapid.Map(rapid.Uint64(), func(v uint64) any { return v }),
		rapid.Map(rapid.Float64(), func(v float64) any { return v }),
		rapid.Map(rapid.String(), func(v string) any { return v }),
	}
	if depth > 0 {
		inner := jsonValueGen(depth - 1)
		gens = append(gens,
			rapid.Map(rapid.SliceOfN(inner, 0, 4), func(v []any) any { return v }),
			rapid.Map(rapid.MapOfN(rapid.String(), inner, 0, 4), func(v map[string]any) any { return v }))
	}
	return rapid.OneOf(gens...)
}

var knownKeys = map[string]bool{"type": true, "room": true, "stream": true, "id": true, "data": true,
	"since": true, "seq": true, "producer": true, "pseq": true}

// envelopeGen draws a message map with a valid type, any subset of the other
// known fields, and unknown fields.
func envelopeGen(t *rapid.T) map[string]any {
	m := map[string]any{"type": rapid.SampledFrom([]string{"join", "leave", "publish", "event", "ping", "ack"}).Draw(t, "type")}
	for _, k := range []string{"room", "stream", "producer"} {
		if rapid.Bool().Draw(t, "has-"+k) {
			m[k] = rapid.String().Draw(t, k)
		}
	}
	for _, k := range []string{"since", "seq", "pseq"} {
		if rapid.Bool().Draw(t, "has-"+k) {
			m[k] = rapid.Uint64().Draw(t, k)
		}
	}
	if rapid.Bool().Draw(t, "has-id") {
		m["id"] = jsonValueGen(2).Draw(t, "id")
	}
	if rapid.Bool().Draw(t, "has-data") {
		m["data"] = jsonValueGen(3).Draw(t, "data")
	}
	extra := rapid.MapOfN(rapid.String(), jsonValueGen(2), 0, 3).Draw(t, "extra")
	for k, v := range extra {
		if !knownKeys[k] {
			m[k] = v
		}
	}
	return m
}

// jsonNorm is what encoding/json makes of v after a round trip.
func jsonNorm(t *rapid.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return jsonUnmarshal(t, b)
}

func jsonUnmarshal(t interface{ Fatalf(string, ...any) }, b []byte) any {
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	return out
}

func TestDecodeJSONProperty(t *testing.T) {
	var d Decoder
	rapid.Check(t, func(t *rapid.T) {
		m := envelopeGen(t)
		var in []byte
		switch rapid.IntRange(0, 2).Draw(t, "style") {
		case 0:
			in, _ = json.Marshal(m)
		case 1:
			in, _ = json.MarshalIndent(m, " ", "\t")
		case 2:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(m)
			in = buf.Bytes()
		}
		var e Envelope
		if err := d.DecodeJSON(in, &e); err != nil {
			t.Fatalf("DecodeJSON(%s): %v", in, err)
		}
		if e.Type.String() != m["type"] {
			t.Fatalf("type %v, want %v", e.Type, m["type"])
		}
		for k, got := range map[string][]byte{"room": e.Room, "stream": e.Stream, "producer": e.Producer} {
			want, ok := m[k]
			if ok != (got != nil) || ok && string(got) != jsonNorm(t, want) {
				t.Fatalf("%s = %q, want %q (present %v)", k, got, want, ok)
			}
		}
		for k, got := range map[string][]byte{"id": e.ID, "data": e.Data} {
			want, ok := m[k]
			if ok != (got != nil) || ok && !reflect.DeepEqual(jsonUnmarshal(t, got), jsonNorm(t, want)) {
				t.Fatalf("%s = %s, want %v (present %v)", k, got, want, ok)
			}
		}
		checkUints(t, m, &e)

		// What was decoded re-encodes to what was sent.
		out := AppendMessageJSON(nil, e.Room, e.Seq, e.Data)
		var msg struct {
			Room string
			Data json.RawMessage
		}
		if err := json.Unmarshal(out, &msg); err != nil {
			t.Fatalf("re-encoded message invalid: %s: %v", out, err)
		}
		if want, ok := m["room"]; ok && msg.Room != jsonNorm(t, want) {
			t.Fatalf("re-encoded room %q, want %q", msg.Room, want)
		}
	})
}

func checkUints(t *rapid.T, m map[string]any, e *Envelope) {
	for k, got := range map[string]struct {
		v   uint64
		has bool
	}{"since": {e.Since, e.HasSince}, "seq": {e.Seq, e.HasSeq}, "pseq": {e.PSeq, e.HasPSeq}} {
		want, ok := m[k]
		if ok != got.has || ok && want.(uint64) != got.v {
			t.Fatalf("%s = %d (%v), want %v", k, got.v, got.has, want)
		}
	}
}

// mpNorm is what vmihailenco/msgpack makes of v after a round trip.
func mpNorm(t *rapid.T, v any) any {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("msgpack.Marshal: %v", err)
	}
	return mpUnmarshal(t, b)
}

func mpUnmarshal(t interface{ Fatalf(string, ...any) }, b []byte) any {
	var out any
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatalf("msgpack.Unmarshal(% x): %v", b, err)
	}
	return out
}

func TestDecodeMsgpackProperty(t *testing.T) {
	var d Decoder
	rapid.Check(t, func(t *rapid.T) {
		m := envelopeGen(t)
		sent := maps.Clone(m)
		for _, k := range []string{"room", "stream", "producer"} {
			if s, ok := m[k].(string); ok && rapid.Bool().Draw(t, "bin-"+k) {
				sent[k] = []byte(s) // bin instead of str
			}
		}
		in, err := msgpack.Marshal(sent)
		if err != nil {
			t.Fatal(err)
		}
		var e Envelope
		if err := d.DecodeMsgpack(in, &e); err != nil {
			t.Fatalf("DecodeMsgpack(% x): %v", in, err)
		}
		if e.Type.String() != m["type"] {
			t.Fatalf("type %v, want %v", e.Type, m["type"])
		}
		for k, got := range map[string][]byte{"room": e.Room, "stream": e.Stream, "producer": e.Producer} {
			want, ok := m[k]
			if ok != (got != nil) || ok && string(got) != want {
				t.Fatalf("%s = %q, want %q (present %v)", k, got, want, ok)
			}
		}
		for k, got := range map[string][]byte{"id": e.ID, "data": e.Data} {
			want, ok := m[k]
			if ok != (got != nil) || ok && !reflect.DeepEqual(mpUnmarshal(t, got), mpNorm(t, want)) {
				t.Fatalf("%s = % x, want %v (present %v)", k, got, want, ok)
			}
		}
		checkUints(t, m, &e)
	})
}

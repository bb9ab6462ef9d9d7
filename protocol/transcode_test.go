package protocol

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func TestJSONToMsgpack(t *testing.T) {
	tests := []struct {
		in   string
		want any // as vmihailenco/msgpack decodes it
	}{
		{` 1 `, int8(1)},
		{`-1`, int8(-1)},
		{`-0`, int8(0)},
		{`300`, uint16(300)},
		{`18446744073709551615`, uint64(math.MaxUint64)},
		{`-9223372036854775808`, int64(math.MinInt64)},
		{`18446744073709551616`, float64(18446744073709551616)},
		{`-9223372036854775809`, float64(-9223372036854775809)},
		{`1.5`, 1.5},
		{`1e2`, 100.0},
		{`1e400`, math.Inf(1)},
		{`"a\"\u00e9\ud83d\ude00"`, "a\"é😀"},
		{`"` + strings.Repeat(`\n`, 40) + `"`, strings.Repeat("\n", 40)},
		{`true`, true},
		{`false`, false},
		{`null`, nil},
		{`[]`, []any{}},
		{`{}`, map[string]any{}},
		{`{"a":[1,{"b":null}], "c" : "d"}`, map[string]any{"a": []any{int8(1), map[string]any{"b": nil}}, "c": "d"}},
		{`[` + strings.Repeat(`0,`, 20) + `0]`, make([]any, 21)},
		{`[` + strings.Repeat(`0,`, 70000) + `0]`, make([]any, 70001)},
	}
	for _, tt := range tests {
		got, err := JSONToMsgpack([]byte("x"), []byte(tt.in))
		if err != nil {
			t.Errorf("JSONToMsgpack(%.40s): %v", tt.in, err)
			continue
		}
		if got[0] != 'x' {
			t.Errorf("prefix lost")
		}
		v := mpUnmarshal(t, got[1:])
		if !msgpackWellFormed(got[1:]) {
			t.Errorf("JSONToMsgpack(%.40s): trailing bytes", tt.in)
		}
		if s, ok := tt.want.([]any); ok && len(s) > 0 && s[0] == nil {
			for i := range s {
				s[i] = int8(0)
			}
		}
		if !reflect.DeepEqual(v, tt.want) {
			t.Errorf("JSONToMsgpack(%.40s) = %#v, want %#v", tt.in, v, tt.want)
		}
	}
	for _, bad := range []string{``, ` `, `{`, `[1,]`, `1 2`, `{"a" 1}`, `nul`, `"\x"`, `01`, `{1:2}`, `]`,
		strings.Repeat("[", 65) + strings.Repeat("]", 65)} {
		out, err := JSONToMsgpack([]byte("x"), []byte(bad))
		if errCode(err) != CodeBadJSON || string(out) != "x" {
			t.Errorf("JSONToMsgpack(%.40q) = %q, %v; want bad_json and dst unchanged", bad, out, err)
		}
	}
	if _, err := JSONToMsgpack(nil, []byte(strings.Repeat("[", 64)+strings.Repeat("]", 64))); err != nil {
		t.Errorf("64 levels: %v", err)
	}
}

func TestMsgpackToJSON(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte{0x05}, `5`},
		{[]byte{0xff}, `-1`},
		{[]byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, `18446744073709551615`},
		{[]byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, `-9223372036854775808`},
		{[]byte{0xd0, 0x80}, `-128`},
		{[]byte{0xd1, 0xff, 0x7f}, `-129`},
		{[]byte{0xd2, 0xff, 0xff, 0xff, 0xff}, `-1`},
		{[]byte{0xcc, 0xff}, `255`},
		{[]byte{0xc0}, `null`},
		{[]byte{0xc2}, `false`},
		{[]byte{0xc3}, `true`},
		{[]byte{0xca, 0x3f, 0xc0, 0, 0}, `1.5`},
		{[]byte{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, `1.5`},
		{appendMsgpackFloat64(nil, 1e21), `1e+21`},
		{appendMsgpackFloat64(nil, 1e-7), `1e-7`},
		{appendMsgpackFloat64(nil, math.NaN()), `null`},
		{appendMsgpackFloat64(nil, math.Inf(-1)), `null`},
		{mp("a\"\n\xff"), `"a\"\n\ufffd"`},
		{mpBin("hi!"), `"aGkh"`},
		{[]byte{0xc5, 0, 0}, `""`},
		{[]byte{0xd4, 0xff, 0x01}, `{"ext":-1,"data":"AQ=="}`},
		{[]byte{0xc7, 2, 5, 1, 2}, `{"ext":5,"data":"AQI="}`},
		{[]byte{0xc9, 0, 0, 0, 0, 7}, `{"ext":7,"data":""}`},
		{mp(byte(0x92), 1, "x"), `[1,"x"]`},
		{mp(fixmap(0)), `{}`},
		{mp([]byte{0xdc, 0, 0}), `[]`},
		{mp(fixmap(6), "s", 1, 2, 3, mpBin("b"), 4, byte(0xc3), 5, byte(0xc0), 6, byte(0x91), 7, 8),
			`{"s":1,"2":3,"Yg==":4,"true":5,"null":6,"[7]":8}`},
		{mp([]byte{0xde, 0, 1}, fixmap(1), "k", "v", "x"), `{"{\"k\":\"v\"}":"x"}`},
	}
	for _, tt := range tests {
		got, err := MsgpackToJSON([]byte("x"), tt.in)
		if err != nil || string(got) != "x"+tt.want {
			t.Errorf("MsgpackToJSON(% x) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
		if err == nil && !json.Valid(got[1:]) {
			t.Errorf("MsgpackToJSON(% x): invalid JSON %s", tt.in, got[1:])
		}
	}
	deep := func(n int) []byte { return append(bytesRepeat(0x91, n-1), 0x90) }
	for _, bad := range [][]byte{nil, {0xc1}, {0x92, 1}, {0x81, 1}, {1, 2}, {0xd9, 5, 'a'}, {0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xd4, 1}, {0xc7, 5, 1}, {0xcb, 0}, {0xcd, 1}, {0xd3, 1}, deep(65)} {
		out, err := MsgpackToJSON([]byte("x"), bad)
		if errCode(err) != CodeBadMsgpack || string(out) != "x" {
			t.Errorf("MsgpackToJSON(% x) = %q, %v; want bad_msgpack and dst unchanged", bad, out, err)
		}
	}
	if _, err := MsgpackToJSON(nil, deep(64)); err != nil {
		t.Errorf("64 levels: %v", err)
	}
}

func bytesRepeat(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// numbersToFloat maps every numeric type to float64, so values decoded by
// encoding/json and vmihailenco/msgpack compare equal.
func numbersToFloat(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = numbersToFloat(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToFloat(x[k])
		}
	}
	if rv := reflect.ValueOf(v); rv.IsValid() && rv.CanConvert(reflect.TypeFor[float64]()) && rv.Kind() != reflect.String {
		return rv.Convert(reflect.TypeFor[float64]()).Float()
	}
	return v
}

func TestTranscodeRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := jsonValueGen(4).Draw(t, "v")
		js, _ := json.Marshal(v)
		if rapid.Bool().Draw(t, "indent") {
			js, _ = json.MarshalIndent(v, "", " ")
		}
		want := jsonUnmarshal(t, js)

		m, err := JSONToMsgpack(nil, js)
		if err != nil {
			t.Fatalf("JSONToMsgpack(%s): %v", js, err)
		}
		if !msgpackWellFormed(m) {
			t.Fatalf("JSONToMsgpack(%s): not one msgpack value: % x", js, m)
		}
		if got := numbersToFloat(mpUnmarshal(t, m)); !reflect.DeepEqual(got, want) {
			t.Fatalf("msgpack of %s decodes to %#v", js, got)
		}

		back, err := MsgpackToJSON(nil, m)
		if err != nil {
			t.Fatalf("MsgpackToJSON(% x): %v", m, err)
		}
		if got := jsonUnmarshal(t, back); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip %s → %s", js, back)
		}
	})
}

func TestMsgpackToJSONProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := jsonValueGen(4).Draw(t, "v")
		m, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		js, err := MsgpackToJSON(nil, m)
		if err != nil || !json.Valid(js) {
			t.Fatalf("MsgpackToJSON(% x) = %s, %v", m, js, err)
		}
		if got, want := jsonUnmarshal(t, js), jsonNorm(t, v); !reflect.DeepEqual(got, want) {
			t.Fatalf("MsgpackToJSON(%#v) = %s", v, js)
		}
	})
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := rapid.Float64().Draw(t, "f")
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f, 64); string(got) != string(want) {
			t.Fatalf("float64 %v: %s, encoding/json %s", f, got, want)
		}
		f32 := rapid.Float32().Draw(t, "f32")
		want, _ = json.Marshal(f32)
		if got := appendJSONFloat(nil, float64(f32), 32); string(got) != string(want) {
			t.Fatalf("float32 %v: %s, encoding/json %s", f32, got, want)
		}
	})
}

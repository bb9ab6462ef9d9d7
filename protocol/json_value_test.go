package protocol

import (
	"encoding/json"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// TestDecodeJSONValueMatchesEncodingJSON: on any input, DecodeJSONValue
// accepts exactly what encoding/json accepts (within the depth limit) and
// gives the same value.
func TestDecodeJSONValueMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{`{"a":1,"b":[true,false,null,"x\u00e9\n"],"c":{"d":-1.5e3}}`, `"s"`, `0`, `[]`, `{}`, ` [ 1 , 2 ] `,
		`{"a":1,"a":2}`, `1e400`, `{"a"}`, `[1,]`, `"\ud800"`, `nul`, `01`, `{"a":1} x`, ``} {
		checkDecodeSame(t, []byte(s))
	}
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.OneOf(jsonGen(3)).Draw(t, "v")
		b, _ := json.Marshal(v)
		if rapid.Bool().Draw(t, "mangle") && len(b) > 0 {
			b = b[:rapid.IntRange(0, len(b)-1).Draw(t, "cut")]
		}
		checkDecodeSame(t, b)
	})
}

func jsonGen(depth int) *rapid.Generator[any] {
	leaf := rapid.OneOf(
		rapid.Map(rapid.Float64(), func(f float64) any { return f }),
		rapid.Map(rapid.String(), func(s string) any { return s }),
		rapid.Map(rapid.Bool(), func(b bool) any { return b }),
		rapid.Just[any](nil),
	)
	if depth == 0 {
		return leaf
	}
	return rapid.OneOf(leaf,
		rapid.Map(rapid.SliceOfN(jsonGen(depth-1), 0, 4), func(a []any) any { return a }),
		rapid.Map(rapid.MapOfN(rapid.String(), jsonGen(depth-1), 0, 4), func(m map[string]any) any { return m }),
	)
}

type tb interface {
	Fatalf(string, ...any)
}

func checkDecodeSame(t tb, b []byte) {
	var want any
	werr := json.Unmarshal(b, &want)
	got, gerr := DecodeJSONValue(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: encoding/json err %v, DecodeJSONValue err %v", b, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %#v, want %#v", b, got, want)
	}
}

func BenchmarkDecodeJSONValue(b *testing.B) {
	doc := []byte(`{"t":"1732690000123456789","p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","size":40,"tier":"big","routed":true}`)
	b.Run("impl=protocol", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for i := 0; i < b.N; i++ {
			if _, err := DecodeJSONValue(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for i := 0; i < b.N; i++ {
			var v any
			if err := json.Unmarshal(doc, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDecodeJSONValue: whatever the input, DecodeJSONValue agrees with
// encoding/json (corpus in testdata/fuzz/FuzzDecodeJSONValue).
func FuzzDecodeJSONValue(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":null}],"c":"\u00e9"}`))
	f.Add([]byte(`-0.5e-3`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		checkDecodeSame(t, b)
	})
}

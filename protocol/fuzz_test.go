package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// The seed corpora live in testdata/fuzz/FuzzDecodeJSON and
// testdata/fuzz/FuzzDecodeMsgpack (hand-written seeds plus entries kept from
// fuzzing runs); f.Add adds a few more here.

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"publish","room":"room-42","id":7,"data":{"v":123,"s":"hello world"}}`,
		`{"type":"join","room":"a\u0000b","since":18446744073709551615}`,
		`{"type":"ack","room":"r","seq":1,"x":[1,-2.5e-3,true,false,null,{}]}`,
		`{"\u0074ype":"ping","id":"\ud83d\ude00"}`,
		`{"type":"event","stream":"s","producer":"p","pseq":0,"data":null}`,
		" {\"type\" :\"ping\", \"id\" : {\"a\" : 1} ,\n\"data\"\t:[ 1 ] } ",
	} {
		f.Add([]byte(s))
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Envelope
		err := d.DecodeJSON(in, &e)
		code := errCode(err)
		valid := json.Valid(in)
		switch {
		case err == nil || code == CodeBadField || code == CodeMissingType || code == CodeUnknownType:
			if !valid {
				t.Fatalf("accepted (%v) but encoding/json rejects %q", err, in)
			}
			var m map[string]json.RawMessage
			if uerr := json.Unmarshal(in, &m); uerr != nil {
				t.Fatalf("accepted (%v) but not a JSON object for encoding/json: %v", err, uerr)
			}
			if err == nil {
				crossCheckJSON(t, in, m, &e)
			}
		case code == CodeBadJSON:
			if valid && !errors.Is(err, errJSONDepth) && !errors.Is(err, errJSONNotObject) {
				t.Fatalf("bad_json (%v) but encoding/json accepts %q", err, in)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// crossCheckJSON compares a successful decode with encoding/json's view of
// the same object (exact keys, last duplicate wins in both).
func crossCheckJSON(t *testing.T, in []byte, m map[string]json.RawMessage, e *Envelope) {
	t.Helper()
	for k, got := range map[string][]byte{"type": e.TypeName, "room": e.Room, "stream": e.Stream, "producer": e.Producer} {
		raw, ok := m[k]
		if ok != (got != nil) {
			t.Fatalf("%s presence: decoder %v, encoding/json %v in %q", k, got != nil, ok, in)
		}
		var want string
		if ok && json.Unmarshal(raw, &want) == nil && utf8.Valid(got) && want != string(got) {
			t.Fatalf("%s = %q, encoding/json %q in %q", k, got, want, in)
		}
	}
	for k, got := range map[string][]byte{"id": e.ID, "data": e.Data} {
		if raw, ok := m[k]; ok != (got != nil) || ok && !bytes.Equal(raw, got) {
			t.Fatalf("%s = %q, encoding/json %q in %q", k, got, raw, in)
		}
	}
	for k, got := range map[string]struct {
		v   uint64
		has bool
	}{"since": {e.Since, e.HasSince}, "seq": {e.Seq, e.HasSeq}, "pseq": {e.PSeq, e.HasPSeq}} {
		raw, ok := m[k]
		var want uint64
		if ok != got.has || ok && (json.Unmarshal(raw, &want) != nil || want != got.v) {
			t.Fatalf("%s = %d (%v), encoding/json %s in %q", k, got.v, got.has, raw, in)
		}
	}
}

func FuzzDecodeMsgpack(f *testing.F) {
	f.Add(mp(fixmap(4), "type", "publish", "room", "room-42", "id", 7, "data", fixmap(2), "v", 123, "s", "hello world"))
	f.Add(mp(fixmap(3), mpBin("type"), mpBin("join"), "room", mpBin("r"), "since", uint64(1<<63)))
	f.Add(mp(fixmap(2), "type", "ping", "x", []byte{0x93, 0xd4, 1, 1, 0xc7, 1, 2, 3, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(mp([]byte{0xde, 0, 2}, "type", "ack", "seq", []byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	var d Decoder
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Envelope
		err := d.DecodeMsgpack(in, &e)
		code := errCode(err)
		wellFormed := msgpackWellFormed(in)
		isMap := len(in) > 0 && (in[0]&0xf0 == 0x80 || in[0] == 0xde || in[0] == 0xdf)
		switch {
		case err == nil || code == CodeBadField || code == CodeMissingType || code == CodeUnknownType:
			if !wellFormed || !isMap {
				t.Fatalf("accepted (%v) but vmihailenco/msgpack rejects % x", err, in)
			}
			if err == nil {
				// Every raw span must itself be one well-formed value.
				for _, v := range [][]byte{e.ID, e.Data} {
					if v != nil && !msgpackWellFormed(v) {
						t.Fatalf("raw span % x is not one value", v)
					}
				}
				if js, terr := MsgpackToJSON(nil, e.Data); e.Data != nil && (terr != nil || !json.Valid(js)) {
					t.Fatalf("MsgpackToJSON(% x) = %s, %v", e.Data, js, terr)
				}
			}
		case code == CodeBadMsgpack:
			if wellFormed && isMap && !errors.Is(err, errMPDepth) {
				t.Fatalf("bad_msgpack (%v) but vmihailenco/msgpack accepts % x", err, in)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzTranscodeJSON checks that JSONToMsgpack accepts exactly what
// encoding/json accepts (up to the depth limit) and that the result converts
// back to equivalent JSON.
func FuzzTranscodeJSON(f *testing.F) {
	for _, s := range []string{`1`, `-0.5e3`, `"\ud83d"`, `[1,{"a":null}]`, `{"a":{"b":[true,false]}}`, `18446744073709551616`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := JSONToMsgpack(nil, in)
		if valid := json.Valid(in); (err == nil) != valid && !errors.Is(err, errJSONDepth) {
			t.Fatalf("JSONToMsgpack(%q): err %v, encoding/json valid %v", in, err, valid)
		}
		if err != nil {
			return
		}
		if !msgpackWellFormed(m) {
			t.Fatalf("JSONToMsgpack(%q) = % x: not one msgpack value", in, m)
		}
		back, err := MsgpackToJSON(nil, m)
		if err != nil || !json.Valid(back) {
			t.Fatalf("MsgpackToJSON(% x) = %q, %v", m, back, err)
		}
	})
}

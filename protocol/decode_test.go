package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// want describes the expected Envelope (string fields as Go strings; a
// "<nil>" sentinel means the field must be nil).
type want struct {
	typ                     Type
	room, stream, id, data  string
	producer                string
	since, seq, pseq        uint64
	hasSince, hasSeq, hasPS bool
}

const absent = "<nil>"

func checkEnvelope(t *testing.T, e *Envelope, w want) {
	t.Helper()
	eq := func(name string, got []byte, exp string) {
		t.Helper()
		if exp == absent {
			if got != nil {
				t.Errorf("%s = %q, want nil", name, got)
			}
			return
		}
		if got == nil || string(got) != exp {
			t.Errorf("%s = %q (nil=%v), want %q", name, got, got == nil, exp)
		}
	}
	if e.Type != w.typ {
		t.Errorf("Type = %v, want %v", e.Type, w.typ)
	}
	eq("Room", e.Room, w.room)
	eq("Stream", e.Stream, w.stream)
	eq("ID", e.ID, w.id)
	eq("Data", e.Data, w.data)
	eq("Producer", e.Producer, w.producer)
	if e.Since != w.since || e.HasSince != w.hasSince {
		t.Errorf("Since = %d,%v want %d,%v", e.Since, e.HasSince, w.since, w.hasSince)
	}
	if e.Seq != w.seq || e.HasSeq != w.hasSeq {
		t.Errorf("Seq = %d,%v want %d,%v", e.Seq, e.HasSeq, w.seq, w.hasSeq)
	}
	if e.PSeq != w.pseq || e.HasPSeq != w.hasPS {
		t.Errorf("PSeq = %d,%v want %d,%v", e.PSeq, e.HasPSeq, w.pseq, w.hasPS)
	}
}

func w0(typ Type) want {
	return want{typ: typ, room: absent, stream: absent, id: absent, data: absent, producer: absent}
}

func with(w want, f func(*want)) want { f(&w); return w }

func TestDecodeJSONFields(t *testing.T) {
	tests := []struct {
		in   string
		want want
	}{
		{`{"type":"ping"}`, w0(TypePing)},
		{" \t\r\n{ \"type\" : \"ping\" } \n", w0(TypePing)},
		{`{"type":"publish","room":"room-42","id":7,"data":{"v":123,"s":"hello world"}}`,
			with(w0(TypePublish), func(w *want) { w.room, w.id, w.data = "room-42", "7", `{"v":123,"s":"hello world"}` })},
		{`{"type":"join","room":"a","since":0}`,
			with(w0(TypeJoin), func(w *want) { w.room, w.hasSince = "a", true })},
		{`{"type":"join","room":"a","since":18446744073709551615}`,
			with(w0(TypeJoin), func(w *want) { w.room, w.since, w.hasSince = "a", 1<<64-1, true })},
		{`{"type":"ack","room":"r","seq":42,"id":"x-1"}`,
			with(w0(TypeAck), func(w *want) { w.room, w.seq, w.hasSeq, w.id = "r", 42, true, `"x-1"` })},
		{`{"type":"event","stream":"market","data":null}`,
			with(w0(TypeEvent), func(w *want) { w.stream, w.data = "market", "null" })},
		{`{"type":"event","stream":"s","data":[1, 2 ,{"a":[]}],"producer":"p1","pseq":9}`,
			with(w0(TypeEvent), func(w *want) {
				w.stream, w.data, w.producer, w.pseq, w.hasPS = "s", `[1, 2 ,{"a":[]}]`, "p1", 9, true
			})},
		{`{"type":"leave","room":""}`, with(w0(TypeLeave), func(w *want) { w.room = "" })},
		// escapes: in values, in keys, surrogate pairs, lone surrogates
		{`{"type":"join","room":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`,
			with(w0(TypeJoin), func(w *want) { w.room = "a\"b\\c/d\b\f\n\r\t\u00e9\U0001F600" })},
		{`{"\u0074ype":"\u006aoin","r\u006fom":"x"}`, with(w0(TypeJoin), func(w *want) { w.room = "x" })},
		{`{"type":"join","room":"\ud800x\udc00"}`, with(w0(TypeJoin), func(w *want) { w.room = "\uFFFDx\uFFFD" })},
		// duplicates: last wins
		{`{"type":"join","room":"a","room":"b","type":"leave"}`, with(w0(TypeLeave), func(w *want) { w.room = "b" })},
		// unknown fields ignored (but validated)
		{`{"x":{"y":[true,false,null,-1.5e-3,"\u0041"]},"type":"ping","ROOM":"no"}`, w0(TypePing)},
		// id of every kind, kept raw
		{`{"type":"ping","id":{"a": 1 }}`, with(w0(TypePing), func(w *want) { w.id = `{"a": 1 }` })},
		{`{"type":"ping","id":-0.5E+2}`, with(w0(TypePing), func(w *want) { w.id = `-0.5E+2` })},
	}
	var d Decoder
	for _, tt := range tests {
		var e Envelope
		if err := d.DecodeJSON([]byte(tt.in), &e); err != nil {
			t.Errorf("DecodeJSON(%s): %v", tt.in, err)
			continue
		}
		t.Run("", func(t *testing.T) { checkEnvelope(t, &e, tt.want) })
	}
}

func errCode(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return "non-protocol error: " + err.Error()
	}
	return ""
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct{ in, code string }{
		{``, CodeBadJSON},
		{`   `, CodeBadJSON},
		{`[]`, CodeBadJSON},
		{`"type"`, CodeBadJSON},
		{`null`, CodeBadJSON},
		{`{`, CodeBadJSON},
		{`{"type":"ping"`, CodeBadJSON},
		{`{"type":"ping",}`, CodeBadJSON},
		{`{"type" "ping"}`, CodeBadJSON},
		{`{"type":}`, CodeBadJSON},
		{`{,}`, CodeBadJSON},
		{`{"type":"ping"} x`, CodeBadJSON},
		{`{"type":"ping"}{}`, CodeBadJSON},
		{"{\"type\":\"ping\"}\x00", CodeBadJSON},
		{"\xef\xbb\xbf{\"type\":\"ping\"}", CodeBadJSON},
		{`{'type':'ping'}`, CodeBadJSON},
		{`{type:"ping"}`, CodeBadJSON},
		{`{"type":"ping","a":01}`, CodeBadJSON},
		{`{"type":"ping","a":1.}`, CodeBadJSON},
		{`{"type":"ping","a":.5}`, CodeBadJSON},
		{`{"type":"ping","a":-}`, CodeBadJSON},
		{`{"type":"ping","a":1e}`, CodeBadJSON},
		{`{"type":"ping","a":1e+}`, CodeBadJSON},
		{`{"type":"ping","a":+1}`, CodeBadJSON},
		{`{"type":"ping","a":0x10}`, CodeBadJSON},
		{`{"type":"ping","a":NaN}`, CodeBadJSON},
		{`{"type":"ping","a":Infinity}`, CodeBadJSON},
		{`{"type":"ping","a":"\x"}`, CodeBadJSON},
		{`{"type":"ping","a":"\u12"}`, CodeBadJSON},
		{`{"type":"ping","a":"\u12g4"}`, CodeBadJSON},
		{"{\"type\":\"ping\",\"a\":\"a\x01b\"}", CodeBadJSON},
		{"{\"type\":\"ping\",\"a\":\"a\tb\"}", CodeBadJSON},
		{`{"type":"ping","a":"abc}`, CodeBadJSON},
		{`{"type":"ping","a":tru}`, CodeBadJSON},
		{`{"type":"ping","a":nul}`, CodeBadJSON},
		{`{"type":"ping","a":falsey}`, CodeBadJSON},
		{`{"type":"ping","a":True}`, CodeBadJSON},
		{`{"type":"ping","a":[1,]}`, CodeBadJSON},
		{`{"type":"ping","a":[1 2]}`, CodeBadJSON},
		{`{"type":"ping","a":[}`, CodeBadJSON},
		{`{"type":"ping","a":{"b"}}`, CodeBadJSON},
		{`{"type":"ping","a":{"b":1,}}`, CodeBadJSON},
		{`{"type":"ping","a":{1:2}}`, CodeBadJSON},
		{`{"type":"ping","data":[1,}`, CodeBadJSON},
		{`{"type":"ping","id":}`, CodeBadJSON},
		{`{"type":"ping","since":1.}`, CodeBadJSON},
		{`{"type":"ping","since":-}`, CodeBadJSON},
		{`{"type":"ping","room":"\q"}`, CodeBadJSON},
		{`{"type":5,"a":[}`, CodeBadJSON},                        // syntax wins over kinds
		{`{"type":"ping","a":` + nested("[", "]", 63) + `}`, ""}, // 64 levels
		{`{"type":"ping","a":` + nested("[", "]", 64) + `}`, CodeBadJSON},
		{`{"type":"ping","a":` + strings.Repeat(`{"a":`, 63) + `1` + strings.Repeat(`}`, 63) + `}`, ""},
		{`{"type":"ping","a":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat(`}`, 64) + `}`, CodeBadJSON},

		{`{}`, CodeMissingType},
		{`{"room":"a"}`, CodeMissingType},
		{`{"Type":"ping"}`, CodeMissingType},
		{`{"type":"pong"}`, CodeUnknownType},
		{`{"type":""}`, CodeUnknownType},
		{`{"type":"JOIN"}`, CodeUnknownType},
		{`{"type":"message","room":5}`, CodeUnknownType}, // unknown type before field kinds

		{`{"type":5}`, CodeBadField},
		{`{"type":null}`, CodeBadField},
		{`{"type":5,"type":"ping"}`, CodeBadField},
		{`{"type":"join","room":5}`, CodeBadField},
		{`{"type":"join","room":null}`, CodeBadField},
		{`{"type":"join","room":["a"]}`, CodeBadField},
		{`{"type":"join","room":1,"room":"a"}`, CodeBadField},
		{`{"type":"event","stream":{}}`, CodeBadField},
		{`{"type":"event","producer":true}`, CodeBadField},
		{`{"type":"join","since":-1}`, CodeBadField},
		{`{"type":"join","since":-0}`, CodeBadField},
		{`{"type":"join","since":1.5}`, CodeBadField},
		{`{"type":"join","since":1e3}`, CodeBadField},
		{`{"type":"join","since":1.0}`, CodeBadField},
		{`{"type":"join","since":"5"}`, CodeBadField},
		{`{"type":"join","since":null}`, CodeBadField},
		{`{"type":"join","since":18446744073709551616}`, CodeBadField},
		{`{"type":"ack","seq":99999999999999999999999}`, CodeBadField},
		{`{"type":"ack","seq":false}`, CodeBadField},
		{`{"type":"event","pseq":[1]}`, CodeBadField},
	}
	var d Decoder
	for _, tt := range tests {
		var e Envelope
		err := d.DecodeJSON([]byte(tt.in), &e)
		if got := errCode(err); got != tt.code {
			t.Errorf("DecodeJSON(%.80q) = %v, want code %q", tt.in, err, tt.code)
		}
		// Cross-check with encoding/json: bad_json exactly when invalid,
		// except for our depth limit and the object-only top level.
		valid := json.Valid([]byte(tt.in))
		if tt.code == CodeBadJSON && valid && !errors.Is(err, errJSONDepth) && !errors.Is(err, errJSONNotObject) {
			t.Errorf("%.80q: bad_json but encoding/json accepts it", tt.in)
		}
		if tt.code != CodeBadJSON && !valid {
			t.Errorf("%.80q: accepted but encoding/json rejects it", tt.in)
		}
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	var d Decoder
	var e Envelope
	err := d.DecodeJSON([]byte(`{"type":"sub\nscribe","id":3}`), &e)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeUnknownType || !strings.Contains(pe.Message, `"sub\nscribe"`) {
		t.Fatalf("err = %#v, want unknown_type naming the type", err)
	}
	if string(e.ID) != "3" || string(e.TypeName) != "sub\nscribe" {
		t.Errorf("on error ID=%q TypeName=%q, want 3 and the type", e.ID, e.TypeName)
	}
	if got := err.Error(); !strings.HasPrefix(got, "protocol: unknown_type: ") {
		t.Errorf("Error() = %q", got)
	}
	long := `{"type":"` + strings.Repeat("x", 1000) + `"}`
	if err := d.DecodeJSON([]byte(long), &e); len(err.Error()) > 200 {
		t.Errorf("unknown_type message not truncated: %d bytes", len(err.Error()))
	}
}

// TestDecodeJSONScratch checks that escaped strings do not overwrite each
// other and that the scratch buffer is reused.
func TestDecodeJSONScratch(t *testing.T) {
	var d Decoder
	var e Envelope
	in := []byte(`{"typ\u0065":"ev\u0065nt","stream":"s\u0031","producer":"p\u0032","room":"r\u0033"}`)
	if err := d.DecodeJSON(in, &e); err != nil {
		t.Fatal(err)
	}
	if string(e.TypeName) != "event" || string(e.Stream) != "s1" || string(e.Producer) != "p2" || string(e.Room) != "r3" {
		t.Fatalf("got type=%q stream=%q producer=%q room=%q", e.TypeName, e.Stream, e.Producer, e.Room)
	}
	if cap(e.Stream) != len(e.Stream) || cap(e.TypeName) != len(e.TypeName) {
		t.Errorf("scratch-backed slice not capacity-limited")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.DecodeJSON(in, &e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeJSON with escapes: %v allocs/op, want 0", allocs)
	}
	d.Reset()
	if err := d.DecodeJSON(in, &e); err != nil || string(e.Room) != "r3" {
		t.Fatalf("after Reset: %v %q", err, e.Room)
	}
}

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		code string
	}{
		{"room-42", 64, ""},
		{"héllo wörld 😀", 64, ""},
		{"", 64, CodeMissingRoom},
		{strings.Repeat("a", 64), 64, ""},
		{strings.Repeat("a", 65), 64, CodeRoomTooLong},
		{strings.Repeat("a", 1000), 0, ""},
		{"a\x00b", 64, CodeInvalidRoom},
		{"a\nb", 64, CodeInvalidRoom},
		{"a\x1fb", 64, CodeInvalidRoom},
		{"a\x7fb", 64, ""},
		{"a\xffb", 64, CodeInvalidRoom},
		{"\xed\xa0\x80", 64, CodeInvalidRoom}, // encoded surrogate
		{"a\xc3", 64, CodeInvalidRoom},
	}
	for _, tt := range tests {
		if got := errCode(ValidRoomName([]byte(tt.in), tt.max)); got != tt.code {
			t.Errorf("ValidRoomName(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.code)
		}
	}
}

func TestParseType(t *testing.T) {
	for ty := TypeUnknown + 1; ty < typeCount; ty++ {
		if got := ParseType([]byte(ty.String())); got != ty {
			t.Errorf("ParseType(%q) = %v", ty.String(), got)
		}
	}
	if ParseType([]byte("unknown")) != TypeUnknown || Type(200).String() != "unknown" {
		t.Error("unknown names must map to TypeUnknown")
	}
}

func TestDecodePresenceFields(t *testing.T) {
	var d Decoder
	var e Envelope
	if err := d.DecodeJSON([]byte(`{"type":"join","room":"r","user_id":"ann","info":{"app":"web"}}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != TypeJoin || string(e.UserID) != "ann" || string(e.Info) != `{"app":"web"}` {
		t.Fatalf("%+v", e)
	}
	e.Reset()
	if err := d.DecodeJSON([]byte(`{"type":"presence","room":"r","cursor":5,"limit":10}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != TypePresence || !e.HasCursor || e.Cursor != 5 || !e.HasLimit || e.Limit != 10 {
		t.Fatalf("%+v", e)
	}
	e.Reset()
	if err := d.DecodeJSON([]byte(`{"type":"presence_stats","room":"r"}`), &e); err != nil || e.Type != TypePresenceStats {
		t.Fatalf("%+v %v", e, err)
	}
	for src, want := range map[string]string{
		`{"type":"join","room":"r","user_id":7}`:      `"user_id" must be a string`,
		`{"type":"presence","room":"r","limit":-1}`:   `"limit" must be a non-negative integer`,
		`{"type":"presence","room":"r","cursor":"x"}`: `"cursor" must be a non-negative integer`,
	} {
		e.Reset()
		if err := d.DecodeJSON([]byte(src), &e); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", src, err, want)
		}
	}
}

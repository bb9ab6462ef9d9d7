package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func TestEncodeJSONExact(t *testing.T) {
	r, id := []byte("r\"1"), []byte(`{"n":7}`)
	tests := []struct{ got, want string }{
		{string(AppendWelcomeJSON(nil, 18446744073709551615, 25000)),
			`{"type":"welcome","session":"18446744073709551615","heartbeat_ms":25000}`},
		{string(AppendJoinedJSON(nil, id, r, 5, false, false)), `{"type":"joined","id":{"n":7},"room":"r\"1","seq":5}`},
		{string(AppendJoinedJSON(nil, nil, r, 0, true, true)), `{"type":"joined","room":"r\"1","seq":0,"recovered":true}`},
		{string(AppendJoinedJSON(nil, nil, r, 0, true, false)), `{"type":"joined","room":"r\"1","seq":0,"recovered":false}`},
		{string(AppendLeftJSON(nil, nil, r)), `{"type":"left","room":"r\"1"}`},
		{string(AppendLeftJSON(nil, []byte("1"), r)), `{"type":"left","id":1,"room":"r\"1"}`},
		{string(AppendMessageJSON(nil, r, 9, []byte(`[1,2]`))), `{"type":"message","room":"r\"1","seq":9,"data":[1,2]}`},
		{string(AppendMessageJSON(nil, r, 9, nil)), `{"type":"message","room":"r\"1","seq":9,"data":null}`},
		{string(AppendAckJSON(nil, []byte(`"a"`), r, 3)), `{"type":"ack","id":"a","room":"r\"1","seq":3}`},
		{string(AppendPongJSON(nil, nil)), `{"type":"pong"}`},
		{string(AppendPongJSON(nil, []byte("2"))), `{"type":"pong","id":2}`},
		{string(AppendErrorJSON(nil, []byte("2"), "bad_json", "x\ny")), `{"type":"error","id":2,"code":"bad_json","message":"x\ny"}`},
		{string(AppendResultJSON(nil, nil, []byte("s"), []byte(`{}`))), `{"type":"result","stream":"s","data":{}}`},
		{string(AppendResultJSON(nil, []byte("4"), []byte("s"), nil)), `{"type":"result","id":4,"stream":"s","data":null}`},
		{string(AppendJSONString([]byte("x"), []byte("a\x00\x1f\x7f<>&\u2028\u2029\xff\xc3é"))),
			`x"a\u0000\u001f` + "\x7f" + `<>&\u2028\u2029\ufffd\ufffdé"`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
		if tt.got[0] == '{' && !json.Valid([]byte(tt.got)) {
			t.Errorf("invalid JSON: %s", tt.got)
		}
	}
}

func mpDecode(t interface{ Fatalf(string, ...any) }, b []byte) map[string]any {
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatalf("msgpack.Unmarshal(% x): %v", b, err)
	}
	if !msgpackWellFormed(b) {
		t.Fatalf("trailing bytes in % x", b)
	}
	return m
}

func TestEncodeMsgpack(t *testing.T) {
	id := mp("req-1")
	r := []byte("room")
	tests := []struct {
		got  []byte
		want map[string]any
	}{
		{AppendWelcomeMsgpack(nil, 1<<64-1, -1), map[string]any{"type": "welcome", "session": "18446744073709551615", "heartbeat_ms": int8(-1)}},
		{AppendWelcomeMsgpack(nil, 0, 25000), map[string]any{"type": "welcome", "session": "0", "heartbeat_ms": uint16(25000)}},
		{AppendJoinedMsgpack(nil, id, r, 300, true, false), map[string]any{"type": "joined", "id": "req-1", "room": "room", "seq": uint16(300), "recovered": false}},
		{AppendJoinedMsgpack(nil, nil, r, 1, false, false), map[string]any{"type": "joined", "room": "room", "seq": int8(1)}},
		{AppendLeftMsgpack(nil, id, r), map[string]any{"type": "left", "id": "req-1", "room": "room"}},
		{AppendMessageMsgpack(nil, r, 1<<40, mp(fixmap(1), "v", 1)), map[string]any{"type": "message", "room": "room", "seq": uint64(1 << 40), "data": map[string]any{"v": int8(1)}}},
		{AppendMessageMsgpack(nil, r, 70000, nil), map[string]any{"type": "message", "room": "room", "seq": uint32(70000), "data": nil}},
		{AppendAckMsgpack(nil, id, r, 200), map[string]any{"type": "ack", "id": "req-1", "room": "room", "seq": uint8(200)}},
		{AppendPongMsgpack(nil, nil), map[string]any{"type": "pong"}},
		{AppendPongMsgpack(nil, id), map[string]any{"type": "pong", "id": "req-1"}},
		{AppendErrorMsgpack(nil, id, "bad_field", "m"), map[string]any{"type": "error", "id": "req-1", "code": "bad_field", "message": "m"}},
		{AppendResultMsgpack(nil, nil, []byte("s"), nil), map[string]any{"type": "result", "stream": "s", "data": nil}},
	}
	for _, tt := range tests {
		if got := mpDecode(t, tt.got); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("got %#v\nwant %#v", got, tt.want)
		}
	}
}

func TestAppendMsgpackIntegers(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		var got int64
		if err := msgpack.Unmarshal(appendMsgpackInt(nil, v), &got); err != nil || got != v {
			t.Errorf("appendMsgpackInt(%d) decodes to %d, %v", v, got, err)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := bytes.Repeat([]byte("x"), n)
		var got string
		if err := msgpack.Unmarshal(AppendMsgpackString(nil, s), &got); err != nil || got != string(s) {
			t.Errorf("AppendMsgpackString(len %d) failed: %v", n, err)
		}
	}
}

// jsonMarshalNoHTML is encoding/json's string encoding without HTML escapes.
func jsonMarshalNoHTML(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(
			rapid.SliceOf(rapid.Byte()),
			rapid.Map(rapid.String(), func(s string) []byte { return []byte(s) }),
		).Draw(t, "s")
		got := AppendJSONString(nil, s)
		if want := jsonMarshalNoHTML(string(s)); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSONString(%q) = %s, encoding/json: %s", s, got, want)
		}
	})
}

// roomGen draws room names rich in characters that need escaping.
func roomGen() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.SliceOf(rapid.Byte()),
		rapid.Map(rapid.String(), func(s string) []byte { return []byte(s) }),
		rapid.Map(rapid.SliceOf(rapid.SampledFrom([]string{`"`, `\`, "\x00", "\n", "\x1f", "é", "😀", "\u2028", "\xff", "a", "/", "<"})),
			func(p []string) []byte {
				var b []byte
				for _, s := range p {
					b = append(b, s...)
				}
				return b
			}),
	)
}

func TestEncodersProduceValidJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		room := roomGen().Draw(t, "room")
		wantRoom := string([]rune(string(room))) // invalid bytes → U+FFFD each
		var id, data []byte
		var idVal, dataVal any
		if rapid.Bool().Draw(t, "hasID") {
			idVal = jsonValueGen(2).Draw(t, "id")
			id, _ = json.Marshal(idVal)
		}
		if rapid.Bool().Draw(t, "hasData") {
			dataVal = jsonValueGen(3).Draw(t, "data")
			data, _ = json.Marshal(dataVal)
		}
		seq := rapid.Uint64().Draw(t, "seq")
		prefix := []byte("prefix")
		outs := map[string][]byte{
			"joined":  AppendJoinedJSON(prefix, id, room, seq, rapid.Bool().Draw(t, "rs"), rapid.Bool().Draw(t, "r")),
			"left":    AppendLeftJSON(prefix, id, room),
			"message": AppendMessageJSON(prefix, room, seq, data),
			"ack":     AppendAckJSON(prefix, id, room, seq),
			"pong":    AppendPongJSON(prefix, id),
			"error":   AppendErrorJSON(prefix, id, string(room), string(room)),
			"result":  AppendResultJSON(prefix, id, room, data),
			"welcome": AppendWelcomeJSON(prefix, seq, rapid.Int64().Draw(t, "hb")),
		}
		for typ, out := range outs {
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("%s: prefix lost", typ)
			}
			out = out[len(prefix):]
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			if !json.Valid(out) || dec.Decode(&m) != nil {
				t.Fatalf("%s: invalid JSON %s", typ, out)
			}
			if m["type"] != typ {
				t.Fatalf("%s: type %v", typ, m["type"])
			}
			if r, ok := m["room"]; ok && r != wantRoom {
				t.Fatalf("%s: room %q, want %q", typ, r, wantRoom)
			}
			if s, ok := m["seq"]; ok && s.(json.Number).String() != jsonNum(seq) {
				t.Fatalf("%s: seq %v, want %d", typ, s, seq)
			}
			if _, ok := m["id"]; ok != (id != nil && typ != "message" && typ != "welcome") {
				t.Fatalf("%s: id presence %v, id=%s", typ, ok, id)
			}
			if typ == "message" || typ == "result" {
				var got, want any
				_ = json.Unmarshal(out, &struct{ Data *any }{&got})
				_ = json.Unmarshal(data, &want)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: data %v, want %v", typ, got, want)
				}
			}
		}
	})
}

func jsonNum(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestEncodersProduceValidMsgpack(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		room := roomGen().Draw(t, "room")
		var id, data []byte
		var idVal, dataVal any
		if rapid.Bool().Draw(t, "hasID") {
			idVal = jsonValueGen(2).Draw(t, "id")
			id, _ = msgpack.Marshal(idVal)
		}
		if rapid.Bool().Draw(t, "hasData") {
			dataVal = jsonValueGen(3).Draw(t, "data")
			data, _ = msgpack.Marshal(dataVal)
		}
		seq := rapid.Uint64().Draw(t, "seq")
		outs := map[string][]byte{
			"joined":  AppendJoinedMsgpack(nil, id, room, seq, rapid.Bool().Draw(t, "rs"), rapid.Bool().Draw(t, "r")),
			"left":    AppendLeftMsgpack(nil, id, room),
			"message": AppendMessageMsgpack(nil, room, seq, data),
			"ack":     AppendAckMsgpack(nil, id, room, seq),
			"pong":    AppendPongMsgpack(nil, id),
			"error":   AppendErrorMsgpack(nil, id, string(room), string(room)),
			"result":  AppendResultMsgpack(nil, id, room, data),
			"welcome": AppendWelcomeMsgpack(nil, seq, rapid.Int64().Draw(t, "hb")),
		}
		for typ, out := range outs {
			m := mpDecode(t, out)
			if m["type"] != typ {
				t.Fatalf("%s: type %v", typ, m["type"])
			}
			if r, ok := m["room"]; ok && r != string(room) {
				t.Fatalf("%s: room %q, want %q", typ, r, room)
			}
			if s, ok := m["seq"]; ok && reflect.ValueOf(s).Convert(reflect.TypeFor[uint64]()).Uint() != seq {
				t.Fatalf("%s: seq %v, want %d", typ, s, seq)
			}
			if _, ok := m["id"]; ok != (id != nil && typ != "message" && typ != "welcome") {
				t.Fatalf("%s: id presence %v", typ, ok)
			}
			if typ == "message" || typ == "result" {
				var want any
				_ = msgpack.Unmarshal(appendMsgpackRaw(nil, data), &want)
				if !reflect.DeepEqual(m["data"], want) {
					t.Fatalf("%s: data %#v, want %#v", typ, m["data"], want)
				}
			}
		}
	})
}

func TestEncodersZeroAlloc(t *testing.T) {
	dst := make([]byte, 0, 1024)
	room, id, data := []byte("room-42"), []byte("7"), []byte(`{"v":123}`)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendWelcomeJSON(dst, 1, 2)
		b = AppendJoinedJSON(b, id, room, 3, true, true)
		b = AppendLeftJSON(b, id, room)
		b = AppendMessageJSON(b, room, 4, data)
		b = AppendAckJSON(b, id, room, 5)
		b = AppendPongJSON(b, id)
		b = AppendErrorJSON(b, id, "bad_json", "message")
		b = AppendResultJSON(b, id, room, data)
		b = AppendWelcomeMsgpack(b, 1, 2)
		b = AppendJoinedMsgpack(b, id, room, 3, true, true)
		b = AppendLeftMsgpack(b, id, room)
		b = AppendMessageMsgpack(b, room, 4, data)
		b = AppendAckMsgpack(b, id, room, 5)
		b = AppendPongMsgpack(b, id)
		b = AppendErrorMsgpack(b, id, "bad_json", "message")
		Sink = AppendResultMsgpack(b, id, room, data)
	})
	if allocs != 0 {
		t.Errorf("encoders: %v allocs/op, want 0", allocs)
	}
}

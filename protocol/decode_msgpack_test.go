package protocol

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mp concatenates msgpack fragments; strings become str values, []byte are
// raw bytes, ints become the smallest int format.
func mp(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			b = AppendMsgpackString(b, []byte(v))
		case []byte:
			b = append(b, v...)
		case int:
			b = appendMsgpackInt(b, int64(v))
		case uint64:
			b = appendMsgpackUint(b, v)
		case byte:
			b = append(b, v)
		default:
			panic("mp: bad part")
		}
	}
	return b
}

func mpBin(s string) []byte { return append([]byte{0xc4, byte(len(s))}, s...) }

func fixmap(n int) byte { return byte(0x80 | n) }

func TestDecodeMsgpackFields(t *testing.T) {
	str32 := func(s string) []byte {
		return append([]byte{0xdb, 0, 0, 0, byte(len(s))}, s...)
	}
	tests := []struct {
		name string
		in   []byte
		want want
	}{
		{"ping", mp(fixmap(1), "type", "ping"), w0(TypePing)},
		{"publish", mp(fixmap(4), "type", "publish", "room", "room-42", "id", 7, "data", fixmap(1), "v", 123),
			with(w0(TypePublish), func(w *want) { w.room, w.id, w.data = "room-42", "\x07", "\x81\xa1v\x7b" })},
		{"bin keys and values", mp(fixmap(2), mpBin("type"), mpBin("join"), mpBin("room"), mpBin("r\x00")),
			with(w0(TypeJoin), func(w *want) { w.room = "r\x00" })},
		{"str32 and map16", mp([]byte{0xde, 0, 2}, str32("type"), str32("leave"), "room", str32("x")),
			with(w0(TypeLeave), func(w *want) { w.room = "x" })},
		{"map32", mp([]byte{0xdf, 0, 0, 0, 1}, "type", "ping"), w0(TypePing)},
		{"since uint64", mp(fixmap(3), "type", "join", "room", "a", "since", uint64(1<<64-1)),
			with(w0(TypeJoin), func(w *want) { w.room, w.since, w.hasSince = "a", 1<<64-1, true })},
		{"seq as positive int64", mp(fixmap(3), "type", "ack", "room", "a", "seq", []byte{0xd3, 0, 0, 0, 0, 0, 0, 1, 0}),
			with(w0(TypeAck), func(w *want) { w.room, w.seq, w.hasSeq = "a", 256, true })},
		{"seq int8", mp(fixmap(2), "type", "ack", "seq", []byte{0xd0, 5}),
			with(w0(TypeAck), func(w *want) { w.seq, w.hasSeq = 5, true })},
		{"pseq uint16", mp(fixmap(3), "type", "event", "producer", "p", "pseq", []byte{0xcd, 1, 0}),
			with(w0(TypeEvent), func(w *want) { w.producer, w.pseq, w.hasPS = "p", 256, true })},
		{"data nil", mp(fixmap(3), "type", "event", "stream", "s", "data", byte(0xc0)),
			with(w0(TypeEvent), func(w *want) { w.stream, w.data = "s", "\xc0" })},
		{"data ext and nested", mp(fixmap(2), "type", "event", "data",
			[]byte{0x92, 0xd4, 1, 2, 0xc7, 2, 0xff, 9, 9}),
			with(w0(TypeEvent), func(w *want) { w.data = "\x92\xd4\x01\x02\xc7\x02\xff\x09\x09" })},
		{"unknown int key skipped", mp(fixmap(2), 1, []byte{0x91, 0xc3}, "type", "ping"), w0(TypePing)},
		{"unknown field of every kind", mp(fixmap(2), "x", []byte{0xdc, 0, 16,
			0xc0, 0xc2, 0xc3, 0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
			0xcc, 1, 0xcd, 1, 1, 0xce, 1, 1, 1, 1, 0xcf, 1, 1, 1, 1, 1, 1, 1, 1,
			0xd0, 1, 0xd1, 1, 1, 0xd2, 1, 1, 1, 1, 0xd3, 1, 1, 1, 1, 1, 1, 1, 1,
			0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0xc8, 0, 1, 5, 0, 0xe0}, "type", "ping"), w0(TypePing)},
		{"duplicates last wins", mp(fixmap(3), "room", "a", "type", "join", "room", "b"),
			with(w0(TypeJoin), func(w *want) { w.room = "b" })},
		{"empty room", mp(fixmap(2), "type", "join", "room", ""),
			with(w0(TypeJoin), func(w *want) { w.room = "" })},
		{"id of str", mp(fixmap(2), "type", "ping", "id", "abc"),
			with(w0(TypePing), func(w *want) { w.id = "\xa3abc" })},
	}
	var d Decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Envelope
			if err := d.DecodeMsgpack(tt.in, &e); err != nil {
				t.Fatalf("DecodeMsgpack(% x): %v", tt.in, err)
			}
			checkEnvelope(t, &e, tt.want)
		})
	}
}

func TestDecodeMsgpackErrors(t *testing.T) {
	deep := func(n int) []byte { // n nested arrays inside a map value
		b := mp(fixmap(2), "type", "ping", "a")
		b = append(b, bytes.Repeat([]byte{0x91}, n-1)...)
		return append(b, 0x90)
	}
	tests := []struct {
		name string
		in   []byte
		code string
	}{
		{"empty", nil, CodeBadMsgpack},
		{"array top", []byte{0x91, 0xc0}, CodeBadMsgpack},
		{"str top", mp("type"), CodeBadMsgpack},
		{"nil top", []byte{0xc0}, CodeBadMsgpack},
		{"missing pair", mp(fixmap(2), "type", "ping"), CodeBadMsgpack},
		{"missing value", mp(fixmap(1), "type"), CodeBadMsgpack},
		{"truncated str", mp(fixmap(1), "type")[:3], CodeBadMsgpack},
		{"truncated map16 header", []byte{0xde, 0}, CodeBadMsgpack},
		{"huge map32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xa0}, CodeBadMsgpack},
		{"huge array32", mp(fixmap(2), "type", "ping", "a", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}), CodeBadMsgpack},
		{"huge str32", mp(fixmap(2), "type", "ping", "a", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}), CodeBadMsgpack},
		{"huge bin32 key", mp(fixmap(1), []byte{0xc6, 0xff, 0xff, 0xff, 0xff}), CodeBadMsgpack},
		{"truncated ext32", mp(fixmap(2), "type", "ping", "a", []byte{0xc9, 0, 0, 0, 2, 1, 0}), CodeBadMsgpack},
		{"truncated fixext16", mp(fixmap(2), "type", "ping", "a", []byte{0xd8, 1, 0}), CodeBadMsgpack},
		{"truncated float64", mp(fixmap(2), "type", "ping", "a", []byte{0xcb, 0, 0}), CodeBadMsgpack},
		{"truncated uint32 since", mp(fixmap(2), "type", "ping", "since", []byte{0xce, 0, 0}), CodeBadMsgpack},
		{"truncated int16 since", mp(fixmap(2), "type", "ping", "since", []byte{0xd1, 0xff}), CodeBadMsgpack},
		{"0xc1", mp(fixmap(2), "type", "ping", "a", byte(0xc1)), CodeBadMsgpack},
		{"0xc1 key", mp(fixmap(1), byte(0xc1), 1), CodeBadMsgpack},
		{"trailing", mp(fixmap(1), "type", "ping", byte(0xc0)), CodeBadMsgpack},
		{"two maps", mp(fixmap(1), "type", "ping", fixmap(0)), CodeBadMsgpack},
		{"depth 64 ok", deep(63), ""},
		{"depth 65", deep(64), CodeBadMsgpack},
		{"bad field inside bad input", mp(fixmap(2), "type", 5, "a"), CodeBadMsgpack},

		{"empty map", mp(fixmap(0)), CodeMissingType},
		{"no type", mp(fixmap(1), "room", "a"), CodeMissingType},
		{"unknown type", mp(fixmap(1), "type", "welcome"), CodeUnknownType},
		{"unknown bin type", mp(fixmap(1), "type", mpBin("x")), CodeUnknownType},

		{"type int", mp(fixmap(1), "type", 1), CodeBadField},
		{"type nil", mp(fixmap(1), "type", byte(0xc0)), CodeBadField},
		{"room int", mp(fixmap(2), "type", "join", "room", 1), CodeBadField},
		{"room array", mp(fixmap(2), "type", "join", "room", []byte{0x91, 0xa1, 'a'}), CodeBadField},
		{"room ext", mp(fixmap(2), "type", "join", "room", []byte{0xd4, 0, 0}), CodeBadField},
		{"stream nil", mp(fixmap(2), "type", "event", "stream", byte(0xc0)), CodeBadField},
		{"producer map", mp(fixmap(2), "type", "event", "producer", fixmap(0)), CodeBadField},
		{"since negative fixint", mp(fixmap(2), "type", "join", "since", -1), CodeBadField},
		{"since int8 negative", mp(fixmap(2), "type", "join", "since", []byte{0xd0, 0x80}), CodeBadField},
		{"since int64 negative", mp(fixmap(2), "type", "join", "since", []byte{0xd3, 0xff, 0, 0, 0, 0, 0, 0, 0}), CodeBadField},
		{"since float", mp(fixmap(2), "type", "join", "since", []byte{0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}), CodeBadField},
		{"since str", mp(fixmap(2), "type", "join", "since", "1"), CodeBadField},
		{"seq bool", mp(fixmap(2), "type", "ack", "seq", byte(0xc3)), CodeBadField},
		{"pseq nil", mp(fixmap(2), "type", "event", "pseq", byte(0xc0)), CodeBadField},
	}
	var d Decoder
	for _, tt := range tests {
		var e Envelope
		err := d.DecodeMsgpack(tt.in, &e)
		if got := errCode(err); got != tt.code {
			t.Errorf("%s: DecodeMsgpack(% x) = %v, want code %q", tt.name, tt.in, err, tt.code)
		}
		// Cross-check well-formedness with vmihailenco/msgpack.
		if ok := msgpackWellFormed(tt.in); tt.code != CodeBadMsgpack && !ok {
			t.Errorf("%s: accepted but vmihailenco/msgpack rejects it", tt.name)
		} else if tt.code == CodeBadMsgpack && ok && len(tt.in) > 0 && tt.in[0]&0xf0 == 0x80 && !errors.Is(err, errMPDepth) {
			t.Errorf("%s: bad_msgpack but vmihailenco/msgpack accepts it", tt.name)
		}
	}
}

// msgpackWellFormed reports whether b is exactly one msgpack value according
// to vmihailenco/msgpack.
func msgpackWellFormed(b []byte) bool {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	return dec.Skip() == nil && r.Len() == 0
}

func TestDecodeMsgpackAliasesInput(t *testing.T) {
	in := mp(fixmap(3), "type", "join", "room", "abc", "id", "x")
	var d Decoder
	var e Envelope
	if err := d.DecodeMsgpack(in, &e); err != nil {
		t.Fatal(err)
	}
	in[len(in)-1] = 'y'
	if string(e.ID) != "\xa1y" {
		t.Errorf("ID does not alias the input: %q", e.ID)
	}
	if cap(e.Room) != len(e.Room) {
		t.Errorf("Room not capacity-limited")
	}
}

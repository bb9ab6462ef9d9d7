package protocol

import "testing"

// Sink keeps benchmark results alive so the compiler cannot drop the work.
var Sink []byte

var (
	benchPublishJSON = []byte(`{"type":"publish","room":"room-42","id":7,"data":{"v":123,"s":"hello world"}}`)
	benchPublishMP   = mp(fixmap(4), "type", "publish", "room", "room-42", "id", 7,
		"data", fixmap(2), "v", 123, "s", "hello world")
	benchRoom = []byte("room-42")
	benchData = []byte(`{"v":123,"s":"hello world"}`)
)

func BenchmarkDecodeJSON(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"msg=publish", benchPublishJSON},
		{"msg=publish_escaped", []byte(`{"type":"publish","room":"room\u002d42","id":7,"data":{"v":123,"s":"hello world"}}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var d Decoder
			var e Envelope
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				if err := d.DecodeJSON(bc.in, &e); err != nil {
					b.Fatal(err)
				}
			}
			Sink = e.Data
		})
	}
}

func BenchmarkDecodeMsgpack(b *testing.B) {
	var d Decoder
	var e Envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublishMP)))
	for b.Loop() {
		if err := d.DecodeMsgpack(benchPublishMP, &e); err != nil {
			b.Fatal(err)
		}
	}
	Sink = e.Data
}

func BenchmarkAppendMessageJSON(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendMessageJSON(nil, benchRoom, 1<<20, benchData))))
	seq := uint64(1 << 20)
	for b.Loop() {
		dst = AppendMessageJSON(dst[:0], benchRoom, seq, benchData)
		seq++
	}
	Sink = dst
}

func BenchmarkAppendMessageMsgpack(b *testing.B) {
	data := mp(fixmap(2), "v", 123, "s", "hello world")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendMessageMsgpack(nil, benchRoom, 1<<20, data))))
	seq := uint64(1 << 20)
	for b.Loop() {
		dst = AppendMessageMsgpack(dst[:0], benchRoom, seq, data)
		seq++
	}
	Sink = dst
}

func BenchmarkTranscode(b *testing.B) {
	mpData := mp(fixmap(2), "v", 123, "s", "hello world")
	dst := make([]byte, 0, 256)
	b.Run("dir=json_to_msgpack", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchData)))
		for b.Loop() {
			dst, _ = JSONToMsgpack(dst[:0], benchData)
		}
		Sink = dst
	})
	b.Run("dir=msgpack_to_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(mpData)))
		for b.Loop() {
			dst, _ = MsgpackToJSON(dst[:0], mpData)
		}
		Sink = dst
	})
}

func TestDecodeZeroAlloc(t *testing.T) {
	var d Decoder
	var e Envelope
	if a := testing.AllocsPerRun(100, func() { _ = d.DecodeJSON(benchPublishJSON, &e) }); a != 0 {
		t.Errorf("DecodeJSON: %v allocs/op", a)
	}
	if a := testing.AllocsPerRun(100, func() { _ = d.DecodeMsgpack(benchPublishMP, &e) }); a != 0 {
		t.Errorf("DecodeMsgpack: %v allocs/op", a)
	}
	bad := []byte(`{"type":"join","room":5,"since":-1}`)
	if a := testing.AllocsPerRun(100, func() { _ = d.DecodeJSON(bad, &e) }); a != 0 {
		t.Errorf("DecodeJSON error path: %v allocs/op", a)
	}
}

package netpoll

import (
	"bytes"
	"testing"
)

var Sink int

func BenchmarkParseFrameHeader(b *testing.B) {
	for _, size := range []int{64, 1000, 70000} {
		f := maskedFrame(0x81, bytes.Repeat([]byte("a"), size))
		b.Run("payload="+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h, n, _ := ParseFrameHeader(f)
				Sink += n + int(h.Length)
			}
		})
	}
}

func BenchmarkUnmask(b *testing.B) {
	for _, size := range []int{64, 1024, 16384} {
		p := make([]byte, size)
		b.Run("size="+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				Sink += Unmask(p, [4]byte{1, 2, 3, 4}, 0)
			}
		})
	}
}

// BenchmarkDecodeFrames measures the read path (header, unmask, dispatch)
// for a batch of 64 masked 64-byte text frames, as one socket read delivers
// them.
func BenchmarkDecodeFrames(b *testing.B) {
	var batch []byte
	for i := 0; i < 64; i++ {
		batch = append(batch, maskedFrame(0x81, bytes.Repeat([]byte("x"), 64))...)
	}
	_, f, c := feed(b, []byte(testHead), nil, Options{})
	c.loop.srv.handler = nopHandler{}
	buf := make([]byte, len(batch))
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(buf, batch) // unmasking works in place
		f.in = buf
		c.readFrames()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// BenchmarkAppendMessageFrame measures building a server frame in the arena,
// plain and compressed.
func BenchmarkAppendMessageFrame(b *testing.B) {
	payload := []byte(`{"type":"message","room":"room-42","seq":12345,"data":{"v":123,"s":"hello world, hello world, hello world, hello world, hello world"}}`)
	for _, deflate := range []bool{false, true} {
		b.Run("deflate="+map[bool]string{false: "off", true: "on"}[deflate], func(b *testing.B) {
			o := Options{CompressionThreshold: 1}
			o.EnsureDefaults()
			l := newLoop(&Server{opts: o}, nil, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for i := 0; i < b.N; i++ {
				Sink += len(l.AppendMessageFrame(OpText, payload, deflate))
				if i%256 == 0 {
					l.arena.reset()
				}
			}
		})
	}
}

type nopHandler struct{}

func (nopHandler) OnOpen(*Conn)                  {}
func (nopHandler) OnMessage(*Conn, byte, []byte) {}
func (nopHandler) OnClose(*Conn, error)          {}
func (nopHandler) OnWake(*Loop)                  {}

func itoa(n int) string { return string(appendInt(nil, n)) }

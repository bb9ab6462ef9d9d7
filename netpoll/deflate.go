package netpoll

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/flate"
)

// deflateTail is the sync-flush trailer RFC 7692 §7.2.1 strips from each
// compressed message and §7.2.2 appends back before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is deflateTail followed by a final empty stored block, so a
// whole message inflates to io.EOF and a truncated one does not.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// windowSize is the LZ77 window a client with context takeover may refer to.
const windowSize = 32768

// compressor compresses whole messages without context takeover. One lives
// in each Loop (a flate writer holds ~650 KB: never one per connection).
type compressor struct {
	w   *flate.Writer
	out bytes.Buffer
}

func newCompressor(level int) *compressor {
	c := &compressor{}
	w, err := flate.NewWriter(&c.out, level)
	if err != nil {
		w, _ = flate.NewWriter(&c.out, flate.BestSpeed)
	}
	c.w = w
	return c
}

// compress returns the RFC 7692 compressed form of p, valid until the next
// call.
func (c *compressor) compress(p []byte) []byte {
	c.out.Reset()
	c.w.Reset(&c.out)
	_, _ = c.w.Write(p)
	_ = c.w.Flush()
	b := c.out.Bytes()
	if bytes.HasSuffix(b, deflateTail) {
		b = b[:len(b)-4]
	}
	if len(b) == 0 {
		// An empty message compresses to a single 0x00 byte (§7.2.3.6).
		return []byte{0x00}
	}
	return b
}

// decompressor inflates messages. One lives in each Loop; a connection whose
// client keeps its compression context passes its window as dict.
type decompressor struct {
	r   io.ReadCloser
	src bytes.Reader
	mr  multiReader
}

// multiReader reads a message and then the deflate tail, without allocating.
type multiReader struct {
	a    *bytes.Reader
	tail bytes.Reader
}

func (m *multiReader) Read(p []byte) (int, error) {
	if m.a.Len() > 0 {
		return m.a.Read(p)
	}
	return m.tail.Read(p)
}

func (m *multiReader) ReadByte() (byte, error) {
	if m.a.Len() > 0 {
		return m.a.ReadByte()
	}
	return m.tail.ReadByte()
}

func newDecompressor() *decompressor {
	d := &decompressor{}
	d.mr.a = &d.src
	d.r = flate.NewReader(&d.mr)
	return d
}

// errInflateTooBig is returned when a message inflates past the limit.
var errInflateTooBig = &ProtocolError{CloseTooBig, "message too big after decompression"}
var errInflateBad = &ProtocolError{CloseInvalidPayload, "invalid compressed data"}

// inflate appends the decompressed message p to dst, failing once the output
// would pass limit bytes (a decompression bomb stops there, not later).
func (d *decompressor) inflate(dst, p, dict []byte, limit int) ([]byte, error) {
	d.src.Reset(p)
	d.mr.tail.Reset(inflateTail)
	if err := d.r.(flate.Resetter).Reset(&d.mr, dict); err != nil {
		return dst, errInflateBad
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := d.r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, errInflateTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil { // corrupt or truncated
			return dst, errInflateBad
		}
	}
}

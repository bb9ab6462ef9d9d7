package aimodel

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// SSEEvent is one server-sent event.
type SSEEvent struct {
	// Event is the event type (the "event:" field; "" means "message").
	Event string
	// Data is the "data:" lines joined with "\n". It is valid only during
	// the emit call that hands it over (the parser reuses its buffer).
	Data []byte
	// ID is the last event ID seen (the "id:" field), which carries over
	// to the following events as the spec says.
	ID string
	// Retry is the "retry:" field in milliseconds, or -1 when the event
	// had none.
	Retry int
}

// ErrSSETooLong is returned when a line or an event's data exceeds the
// parser's MaxEventSize.
var ErrSSETooLong = errors.New("sse: event too long")

// SSEParser parses a text/event-stream incrementally, as the HTML
// specification defines it: lines end with CRLF, LF or CR (a CR at the
// end of one chunk and an LF at the start of the next are one line end);
// a line starting with ':' is a comment (keep-alives); "field: value" or
// "field:value" or "field" (empty value); several "data:" lines are
// joined with "\n"; a blank line dispatches the event (an event without
// data is not dispatched); a leading UTF-8 byte order mark is skipped;
// an event left incomplete at the end of the stream is discarded. Bytes
// are buffered until a line ends, so chunks may split anything — a line,
// a CRLF, a multi-byte UTF-8 character. The zero value is ready; it is
// not safe for concurrent use.
type SSEParser struct {
	// MaxEventSize bounds a line and an event's data, in bytes (default
	// 4 MiB): a longer one fails with ErrSSETooLong.
	MaxEventSize int

	line    []byte // the current line, not yet ended
	data    []byte
	event   string
	id      string
	retry   int
	hasData bool
	lastCR  bool // the last byte fed was a CR ending a line
	started bool // past the optional BOM
	bomSeen int  // BOM bytes matched so far
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func (p *SSEParser) max() int {
	if p.MaxEventSize > 0 {
		return p.MaxEventSize
	}
	return 4 << 20
}

// Feed parses b and calls emit for each event it completes, in order. An
// error from emit stops parsing and is returned.
func (p *SSEParser) Feed(b []byte, emit func(SSEEvent) error) error {
	if !p.started {
		for len(b) > 0 && p.bomSeen < len(bom) {
			if b[0] != bom[p.bomSeen] {
				// not a BOM: what matched so far is content
				p.line = append(p.line, bom[:p.bomSeen]...)
				p.bomSeen = len(bom)
				break
			}
			p.bomSeen++
			b = b[1:]
		}
		if p.bomSeen < len(bom) {
			return nil // need more bytes to know
		}
		p.started = true
	}
	for len(b) > 0 {
		if p.lastCR {
			p.lastCR = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			if len(p.line)+len(b) > p.max() {
				return ErrSSETooLong
			}
			p.line = append(p.line, b...)
			return nil
		}
		var line []byte
		if len(p.line) == 0 {
			line = b[:i]
		} else {
			if len(p.line)+i > p.max() {
				return ErrSSETooLong
			}
			p.line = append(p.line, b[:i]...)
			line = p.line
		}
		p.lastCR = b[i] == '\r'
		b = b[i+1:]
		err := p.processLine(line, emit)
		p.line = p.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *SSEParser) processLine(line []byte, emit func(SSEEvent) error) error {
	if len(line) == 0 {
		return p.dispatch(emit)
	}
	if line[0] == ':' {
		return nil // a comment
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if len(p.data)+len(value)+1 > p.max() {
			return ErrSSETooLong
		}
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.event = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = string(value)
		}
	case "retry":
		if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 && isDigits(value) {
			p.retry = n + 1 // +1: 0 means none
		}
	}
	return nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func (p *SSEParser) dispatch(emit func(SSEEvent) error) error {
	if !p.hasData {
		p.event, p.retry = "", 0
		return nil
	}
	ev := SSEEvent{Event: p.event, Data: p.data, ID: p.id, Retry: p.retry - 1}
	p.data, p.hasData, p.event, p.retry = p.data[:0], false, "", 0
	return emit(ev)
}

// Reset forgets everything, for a new stream.
func (p *SSEParser) Reset() {
	*p = SSEParser{MaxEventSize: p.MaxEventSize, line: p.line[:0], data: p.data[:0]}
}

// ReadSSE reads r to its end and calls emit for each event, with a read
// buffer of 4 KiB. It returns nil at a clean EOF (an incomplete last
// event is discarded, as the spec says), the read error otherwise, or
// emit's error.
func ReadSSE(r io.Reader, p *SSEParser, emit func(SSEEvent) error) error {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := p.Feed(buf[:n], emit); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

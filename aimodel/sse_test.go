package aimodel

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

type gotEvent struct {
	Event, Data, ID string
	Retry           int
}

// fataler is testing.TB or *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

// parseAll feeds the chunks in order and returns the events.
func parseAll(t fataler, chunks ...[]byte) []gotEvent {
	var p SSEParser
	var got []gotEvent
	for _, c := range chunks {
		err := p.Feed(c, func(ev SSEEvent) error {
			got = append(got, gotEvent{ev.Event, string(ev.Data), ev.ID, ev.Retry})
			return nil
		})
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
	}
	return got
}

func TestSSEParser(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []gotEvent
	}{
		{"one", "data: hello\n\n", []gotEvent{{"", "hello", "", -1}}},
		{"no space", "data:hello\n\n", []gotEvent{{"", "hello", "", -1}}},
		{"two spaces keep one", "data:  hello\n\n", []gotEvent{{"", " hello", "", -1}}},
		{"multi-line", "data: a\ndata: b\ndata\n\n", []gotEvent{{"", "a\nb\n", "", -1}}},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n", []gotEvent{{"", "a\nb", "", -1}}},
		{"CR", "data: a\rdata: b\r\r", []gotEvent{{"", "a\nb", "", -1}}},
		{"comments and keep-alives", ": ping\n\n:\ndata: x\n: between\n\n", []gotEvent{{"", "x", "", -1}}},
		{"event id retry", "event: delta\nid: 7\nretry: 1500\ndata: {}\n\ndata: next\n\n",
			[]gotEvent{{"delta", "{}", "7", 1500}, {"", "next", "7", -1}}},
		{"bad retry ignored", "retry: 1x\ndata: a\n\n", []gotEvent{{"", "a", "", -1}}},
		{"no data no event", "event: x\n\ndata: y\n\n", []gotEvent{{"", "y", "", -1}}},
		{"incomplete at end dropped", "data: a\n\ndata: b\n", []gotEvent{{"", "a", "", -1}}},
		{"BOM", "\xEF\xBB\xBFdata: a\n\n", []gotEvent{{"", "a", "", -1}}},
		{"unknown field", "foo: bar\ndata: a\n\n", []gotEvent{{"", "a", "", -1}}},
		{"DONE", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []gotEvent{{"", `{"a":1}`, "", -1}, {"", "[DONE]", "", -1}}},
		{"utf8", "data: héllo 日本 🎉\n\n", []gotEvent{{"", "héllo 日本 🎉", "", -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseAll(t, []byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("whole: %+v, want %+v", got, tc.want)
			}
			// byte by byte: every split, including inside CRLF and inside
			// multi-byte UTF-8 characters
			var chunks [][]byte
			for i := range len(tc.in) {
				chunks = append(chunks, []byte{tc.in[i]})
			}
			if got := parseAll(t, chunks...); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("byte by byte: %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSSEParserLimits(t *testing.T) {
	p := SSEParser{MaxEventSize: 16}
	err := p.Feed([]byte("data: "+strings.Repeat("x", 20)), func(SSEEvent) error { return nil })
	if !errors.Is(err, ErrSSETooLong) {
		t.Fatalf("long line: %v", err)
	}
	p = SSEParser{MaxEventSize: 16}
	err = p.Feed([]byte("data: 0123456789\ndata: 0123456789\n\n"), func(SSEEvent) error { return nil })
	if !errors.Is(err, ErrSSETooLong) {
		t.Fatalf("long event: %v", err)
	}
	stop := errors.New("stop")
	p = SSEParser{}
	n := 0
	err = p.Feed([]byte("data: a\n\ndata: b\n\n"), func(SSEEvent) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("emit error: %v after %d", err, n)
	}
}

// splitEvents feeds b split at the given cut points and returns the events.
func splitEvents(t fataler, b []byte, cuts []int) []gotEvent {
	var chunks [][]byte
	prev := 0
	for _, c := range cuts {
		if c > prev && c < len(b) {
			chunks = append(chunks, b[prev:c])
			prev = c
		}
	}
	chunks = append(chunks, b[prev:])
	return parseAll(t, chunks...)
}

// TestSSEAnySplitSameEvents: a valid event stream, with any mix of line
// ends, comments, multi-line data and non-ASCII text, gives the same
// events however it is split into chunks.
func TestSSEAnySplitSameEvents(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type ev struct {
			typ   string
			lines []string
		}
		textGen := rapid.StringOf(rapid.RuneFrom([]rune("ab :{}\"é日🎉[]DONE-_0123456789")))
		events := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) ev {
			return ev{
				typ:   rapid.SampledFrom([]string{"", "delta", "message"}).Draw(t, "type"),
				lines: rapid.SliceOfN(textGen, 1, 4).Draw(t, "lines"),
			}
		}), 0, 8).Draw(t, "events")
		var b bytes.Buffer
		var want []gotEvent
		last := ""
		eol := func() string {
			e := rapid.SampledFrom([]string{"\n", "\r\n", "\r"}).Draw(t, "eol")
			if last == "\r" && e == "\n" {
				e = "\r\n" // a CR then an LF would be one line end
			}
			last = e
			return e
		}
		for _, e := range events {
			if rapid.Bool().Draw(t, "comment") {
				b.WriteString(": keep-alive" + eol())
			}
			if e.typ != "" {
				b.WriteString("event: " + e.typ + eol())
			}
			for _, l := range e.lines {
				b.WriteString("data: " + l + eol())
			}
			b.WriteString(eol())
			want = append(want, gotEvent{e.typ, strings.Join(e.lines, "\n"), "", -1})
		}
		in := b.Bytes()
		whole := parseAll(t, in)
		if !reflect.DeepEqual(whole, want) && !(len(whole) == 0 && len(want) == 0) {
			t.Fatalf("whole stream: %+v, want %+v\n%q", whole, want, in)
		}
		cuts := rapid.SliceOf(rapid.IntRange(0, max(len(in), 1))).Draw(t, "cuts")
		sortInts(cuts)
		got := splitEvents(t, in, cuts)
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %v: %+v, want %+v\n%q", cuts, got, whole, in)
		}
	})
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// FuzzSSEParser: any input, split anywhere, gives the same events as the
// whole input, and the parser never panics; events' data never holds a
// line end other than the "\n" joining data lines, and is valid UTF-8
// whenever the input is.
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{
		"data: hello\n\n",
		"data: a\r\ndata: b\r\n\r\n",
		": ping\r\rdata: x\r\r",
		"event: delta\nid: 1\nretry: 10\ndata: {\"choices\":[{\"delta\":{\"content\":\"日本\"}}]}\n\ndata: [DONE]\n\n",
		"\xEF\xBB\xBFdata: bom\n\n",
		"data:🎉\n\ndata\n\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		collect := func(chunks ...[]byte) ([]gotEvent, error) {
			var p SSEParser
			var got []gotEvent
			for _, c := range chunks {
				if err := p.Feed(c, func(ev SSEEvent) error {
					got = append(got, gotEvent{ev.Event, string(ev.Data), ev.ID, ev.Retry})
					return nil
				}); err != nil {
					return got, err
				}
			}
			return got, nil
		}
		whole, err := collect(in)
		if err != nil {
			t.Fatalf("whole: %v", err)
		}
		k := int(split)%max(len(in), 1) + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += k {
			chunks = append(chunks, in[i:min(i+k, len(in))])
		}
		got, err := collect(chunks...)
		if err != nil || !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunks of %d: %+v (%v), whole: %+v", k, got, err, whole)
		}
		for _, ev := range whole {
			if strings.ContainsRune(ev.Data, '\r') {
				t.Fatalf("data with CR: %q", ev.Data)
			}
			if utf8.Valid(in) && !utf8.ValidString(ev.Data) {
				t.Fatalf("invalid UTF-8 from valid input: %q", ev.Data)
			}
		}
	})
}

func TestReadSSE(t *testing.T) {
	r := strings.NewReader("data: a\n\n: c\ndata: b\r\n\r\ndata: partial")
	var p SSEParser
	var got []string
	if err := ReadSSE(r, &p, func(ev SSEEvent) error { got = append(got, string(ev.Data)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[a b]" {
		t.Fatalf("got %v", got)
	}
}

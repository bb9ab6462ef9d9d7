package aimodel

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// QdrantClient upserts points over Qdrant's HTTP API:
// PUT {BaseURL}/collections/{collection}/points?wait=true with
// {"points":[{"id","vector","payload"}, …]}. Its fields are set once,
// before use; then it is safe for concurrent use.
type QdrantClient struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:6333".
	BaseURL string
	// APIKey is sent as the "api-key" header when set; it never appears
	// in errors or logs.
	APIKey string
	// HTTP sends the requests. Default http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each attempt. Default 10s.
	Timeout time.Duration
	// NoWait leaves out wait=true: Qdrant answers once it has the
	// operation in its log rather than applied.
	NoWait bool
	// Policy retries failed attempts and guards them.
	Policy Policy
}

// UpsertRaw upserts points, each one JSON object {"id","vector","payload"}
// already encoded, into collection, in one request (retried as a whole).
func (c *QdrantClient) UpsertRaw(ctx context.Context, collection string, points [][]byte) error {
	n := 14
	for _, p := range points {
		n += len(p) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, `{"points":[`...)
	for i, p := range points {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, p...)
	}
	body = append(body, "]}"...)
	u := strings.TrimRight(c.BaseURL, "/") + "/collections/" + url.PathEscape(collection) + "/points"
	if !c.NoWait {
		u += "?wait=true"
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return c.Policy.Do(ctx, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodPut, u, bytes.NewReader(body))
		if err != nil {
			return &Error{Reason: ReasonBadInput, Err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		if c.APIKey != "" {
			req.Header.Set("api-key", c.APIKey)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return AsError(err)
		}
		b, err := readAnswer(resp)
		if err != nil {
			return err
		}
		var a struct {
			Status any `json:"status"`
		}
		if err := json.Unmarshal(b, &a); err != nil || a.Status != "ok" {
			return &Error{Reason: ReasonBadResponse, Err: fmt.Errorf("qdrant answer: %.200s", b)}
		}
		return nil
	})
}

// AppendPoint appends one point, {"id":ID,"vector":VECTOR,"payload":PAYLOAD},
// to dst. id must be a valid point id (see AppendPointID); vector is the
// raw JSON array (or, for a named vector, name is set and the vector goes
// under it); payload a raw JSON object (nil: none).
func AppendPoint(dst, id []byte, name string, vector, payload []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"vector":`...)
	if name != "" {
		dst = append(dst, '{')
		b, _ := json.Marshal(name)
		dst = append(dst, b...)
		dst = append(dst, ':')
		dst = append(dst, vector...)
		dst = append(dst, '}')
	} else {
		dst = append(dst, vector...)
	}
	if len(payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, payload...)
	}
	return append(dst, '}')
}

// AppendPointID appends the Qdrant point id for v to dst. Qdrant takes
// unsigned 64-bit integers and UUIDs: a non-negative integer (a JSON
// number without fraction, up to 2^53 for float64) is used as it is; a
// string that is a UUID (hyphenated, simple 32 hex digits, or urn:uuid:)
// is used in its hyphenated lower-case form; anything else (another
// string, a negative or fractional number, an object) becomes the UUID
// version 5 of its text in the URL namespace (NameUUID), so the same
// value always gives the same point.
func AppendPointID(dst []byte, v any) []byte {
	switch x := v.(type) {
	case float64:
		if x >= 0 && x == math.Trunc(x) && x <= 1<<53 {
			return strconv.AppendUint(dst, uint64(x), 10)
		}
	case int:
		if x >= 0 {
			return strconv.AppendUint(dst, uint64(x), 10)
		}
	case int64:
		if x >= 0 {
			return strconv.AppendUint(dst, uint64(x), 10)
		}
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case string:
		if u, ok := ParseUUID(x); ok {
			return strconv.AppendQuote(dst, u)
		}
		return strconv.AppendQuote(dst, NameUUID([]byte(x)))
	}
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprint(v))
	}
	return strconv.AppendQuote(dst, NameUUID(b))
}

// ParseUUID returns s in the hyphenated lower-case form when it is a
// UUID in one of the forms Qdrant accepts.
func ParseUUID(s string) (string, bool) {
	if len(s) == 45 && strings.EqualFold(s[:9], "urn:uuid:") {
		s = s[9:]
	}
	var h string
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		h = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	case 32:
		h = s
	default:
		return "", false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return "", false
	}
	return formatUUID(b), true
}

// urlNamespace is the RFC 4122 URL namespace.
var urlNamespace = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// NameUUID returns the version 5 (SHA-1) UUID of name in the URL
// namespace.
func NameUUID(name []byte) string {
	h := sha1.New()
	h.Write(urlNamespace[:])
	h.Write(name)
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// errNoVector is returned for a point without a vector.
var errNoVector = errors.New("no vector")

// CheckVector reports whether raw is a non-empty JSON array of numbers,
// without building the vector.
func CheckVector(raw []byte) error {
	_, n, err := parseVector(nil, raw, false)
	if err != nil {
		return err
	}
	if n == 0 {
		return errNoVector
	}
	return nil
}

package protocol

// Decoder decodes envelopes. It holds only a scratch buffer for unescaped
// JSON strings, reused from one call to the next, so a long-lived Decoder
// (one per event loop) allocates nothing in steady state.
//
// A Decoder is not safe for concurrent use. Slices an Envelope takes from the
// scratch buffer stay valid until the next Decode call on the same Decoder.
// The zero value is ready to use.
type Decoder struct {
	scratch []byte // unescaped JSON string fields of the last message
}

// maxKeptScratch is the largest scratch buffer Reset keeps.
const maxKeptScratch = 64 << 10

// Reset prepares d for reuse by another owner: it drops the scratch buffer
// if it grew beyond 64 KiB, so that one huge message does not pin its memory
// for the Decoder's lifetime. Decode calls need no Reset between them.
func (d *Decoder) Reset() {
	if cap(d.scratch) > maxKeptScratch {
		d.scratch = nil
	}
	d.scratch = d.scratch[:0]
}

// DecodeJSON decodes b, the payload of a text frame, into e (which it
// resets first). The whole of b must be exactly one JSON object, optionally
// surrounded by whitespace; every nested value is validated. Unknown fields
// are ignored; for duplicate keys the last one wins. Errors are *Error with
// code "bad_json", "bad_field", "missing_type" or "unknown_type"; on error
// the fields decoded so far (notably ID) are left in e so that the answer can
// still carry the id.
//
// Slices in e alias b, or the Decoder's scratch buffer for strings that
// contained escapes (see Envelope). DecodeJSON does not allocate once the
// scratch buffer has grown to the largest message with escaped strings
// (except to build the message of an unknown_type error).
func (d *Decoder) DecodeJSON(b []byte, e *Envelope) error {
	e.Reset()
	d.scratch = d.scratch[:0]
	var fe fieldErrors
	if err := d.decodeJSON(b, e, &fe); err != nil {
		return err
	}
	return fe.finish(e)
}

func (d *Decoder) decodeJSON(b []byte, e *Envelope, fe *fieldErrors) *Error {
	i := skipWS(b, 0)
	if i >= len(b) {
		return errJSONEOF
	}
	if b[i] != '{' {
		return errJSONNotObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) {
				return errJSONEOF
			}
			if b[i] != '"' {
				return errJSONSyntax
			}
			end, escaped, err := scanString(b, i)
			if err != nil {
				return err
			}
			key := b[i+1 : end-1]
			var f field
			if escaped {
				f = lookupEscapedKey(key)
			} else {
				f = lookupField(key)
			}
			if i, err = expectColon(b, end); err != nil {
				return err
			}
			if i >= len(b) {
				return errJSONEOF
			}
			if i, err = d.jsonField(b, i, f, e, fe); err != nil {
				return err
			}
			var done bool
			if i, done, err = nextMember(b, i, '}'); err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
	if skipWS(b, i) != len(b) {
		return errJSONTrailing
	}
	return nil
}

// lookupEscapedKey identifies a key written with escapes ("\u0074ype").
func lookupEscapedKey(raw []byte) field {
	var buf [64]byte // unescaping never lengthens, so this never grows
	if len(raw) > len(buf) {
		return fieldUnknown // longer than any known key can be written
	}
	return lookupField(unescapeAppend(buf[:0], raw))
}

// jsonField decodes the value at b[i] (i < len(b)) of a member whose key is f.
func (d *Decoder) jsonField(b []byte, i int, f field, e *Envelope, fe *fieldErrors) (int, *Error) {
	switch f {
	case fieldType, fieldRoom, fieldStream, fieldProducer, fieldUserID, fieldToken:
		if b[i] != '"' {
			fe.notString(e, f)
			break
		}
		end, escaped, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		s := b[i+1 : end-1 : end-1]
		if escaped {
			s = d.unescape(s, len(b))
		}
		fe.setString(e, f, s)
		return end, nil
	case fieldID, fieldData, fieldInfo:
		end, err := skipValue(b, i, 1)
		if err != nil {
			return 0, err
		}
		e.setRaw(f, b[i:end:end])
		return end, nil
	case fieldSince, fieldSeq, fieldPSeq, fieldCursor, fieldLimit:
		if !isDigit(b[i]) { // negative numbers and other kinds
			fe.bad(notUintErr(f))
			break
		}
		end, isInt, err := scanNumber(b, i)
		if err != nil {
			return 0, err
		}
		if v, ok := parseUintDigits(b[i:end]); isInt && ok {
			setUint(e, f, v)
		} else {
			fe.bad(notUintErr(f))
		}
		return end, nil
	}
	return skipValue(b, i, 1)
}

// unescape appends the unescaped form of s to the scratch buffer and returns
// it. The buffer is sized to the whole message at the first use in a call,
// and unescaped strings are never longer than their source, so it does not
// move again within the call; if it ever had to, a new array is taken and
// earlier slices stay valid on the old one.
func (d *Decoder) unescape(s []byte, msgLen int) []byte {
	if cap(d.scratch)-len(d.scratch) < len(s) {
		d.scratch = make([]byte, 0, max(msgLen, 2*cap(d.scratch), len(s), 64))
	}
	start := len(d.scratch)
	d.scratch = unescapeAppend(d.scratch, s)
	return d.scratch[start:len(d.scratch):len(d.scratch)]
}

// DecodeMsgpack decodes b, the payload of a binary frame, into e (which it
// resets first). b must be exactly one msgpack map, with str or bin keys for
// the known fields (other keys are skipped); every value is validated,
// including nested maps, arrays and ext values. Room, stream, type and
// producer may be str or bin. Errors are *Error with code "bad_msgpack",
// "bad_field", "missing_type" or "unknown_type", chosen as for DecodeJSON.
//
// Every slice in e aliases b. DecodeMsgpack does not allocate (except to
// build the message of an unknown_type error).
func (d *Decoder) DecodeMsgpack(b []byte, e *Envelope) error {
	e.Reset()
	var fe fieldErrors
	if err := decodeMsgpack(b, e, &fe); err != nil {
		return err
	}
	return fe.finish(e)
}

func decodeMsgpack(b []byte, e *Envelope, fe *fieldErrors) *Error {
	n, i, err := mpMapHeader(b, 0)
	if err != nil {
		return err
	}
	if n > uint64(len(b)-i)/2 {
		return errMPTruncated
	}
	for k := uint64(0); k < n; k++ {
		f := fieldUnknown
		start, end, isStr, err := mpStrSpan(b, i)
		if err != nil {
			return err
		}
		if isStr {
			f = lookupField(b[start:end])
			i = end
		} else if i, err = mpSkip(b, i, 1); err != nil {
			return err
		}
		if i, err = mpField(b, i, f, e, fe); err != nil {
			return err
		}
	}
	if i != len(b) {
		return errMPTrailing
	}
	return nil
}

// mpField decodes the msgpack value at b[i] of a member whose key is f.
func mpField(b []byte, i int, f field, e *Envelope, fe *fieldErrors) (int, *Error) {
	switch f {
	case fieldType, fieldRoom, fieldStream, fieldProducer, fieldUserID, fieldToken:
		start, end, isStr, err := mpStrSpan(b, i)
		if err != nil {
			return 0, err
		}
		if isStr {
			fe.setString(e, f, b[start:end:end])
			return end, nil
		}
		fe.notString(e, f)
	case fieldID, fieldData, fieldInfo:
		end, err := mpSkip(b, i, 1)
		if err != nil {
			return 0, err
		}
		e.setRaw(f, b[i:end:end])
		return end, nil
	case fieldSince, fieldSeq, fieldPSeq, fieldCursor, fieldLimit:
		v, end, ok, err := mpUint(b, i)
		if err != nil {
			return 0, err
		}
		if ok {
			setUint(e, f, v)
			return end, nil
		}
		fe.bad(notUintErr(f))
	}
	return mpSkip(b, i, 1)
}

// setRaw keeps the raw encoded value of the id or data field.
func (e *Envelope) setRaw(f field, raw []byte) {
	switch f {
	case fieldID:
		e.ID = raw
	case fieldInfo:
		e.Info = raw
	default:
		e.Data = raw
	}
}

package protocol

import "unicode/utf8"

// Type is the kind of a client → server message, decoded from the "type"
// field. The zero value, TypeUnknown, never names a valid message.
//
// Values are stable only within one build: they are not on the wire (the
// wire carries the name). New types are added before typeCount.
type Type uint8

// Client → server message types (DESIGN.md, "Wire protocol v1").
const (
	TypeUnknown Type = iota
	TypeJoin
	TypeLeave
	TypePublish
	TypeEvent
	TypePing
	TypeAck
	TypePresence
	TypePresenceStats
	TypeAuth  // {"type":"auth","token":T}: authenticate, or refresh the token of an open connection
	typeCount // keep last: the number of defined types
)

var typeNames = [typeCount]string{
	TypeUnknown: "unknown",
	TypeJoin:    "join",
	TypeLeave:   "leave",
	TypePublish: "publish",
	TypeEvent:   "event",
	TypePing:    "ping",
	TypeAck:     "ack",

	TypePresence:      "presence",
	TypePresenceStats: "presence_stats",
	TypeAuth:          "auth",
}

// String returns the wire name of t ("join", …), or "unknown".
func (t Type) String() string {
	if t < typeCount {
		return typeNames[t]
	}
	return "unknown"
}

// ParseType maps a wire type name to its Type; TypeUnknown when the name is
// not a client → server type. It does not allocate.
func ParseType(name []byte) Type {
	switch string(name) { // the compiler does not allocate for this conversion
	case "join":
		return TypeJoin
	case "leave":
		return TypeLeave
	case "publish":
		return TypePublish
	case "event":
		return TypeEvent
	case "ping":
		return TypePing
	case "ack":
		return TypeAck
	case "presence":
		return TypePresence
	case "presence_stats":
		return TypePresenceStats
	case "auth":
		return TypeAuth
	}
	return TypeUnknown
}

// Envelope is one decoded client → server message.
//
// Lifetime: every []byte field aliases either the input passed to
// DecodeJSON/DecodeMsgpack or the Decoder's scratch buffer (string fields of
// a JSON message that contained escape sequences). They stay valid until the
// caller reuses or modifies the input, or until the next Decode call on the
// same Decoder, whichever comes first. Copy what must outlive that.
//
// A nil slice means the field was absent; a present empty string is a
// non-nil empty slice.
type Envelope struct {
	Type     Type   // TypeUnknown only when decoding failed
	TypeName []byte // the type string as sent (unescaped), for error messages
	Room     []byte // unescaped room name
	Stream   []byte // unescaped stream name
	// ID is the raw encoded "id" value exactly as sent: JSON text for a JSON
	// message, msgpack bytes for a msgpack one. Answers echo it verbatim in
	// the same encoding (see JSONToMsgpack / MsgpackToJSON otherwise).
	ID []byte
	// Data is the raw encoded "data" value (a JSON text span or a msgpack
	// value span). The engine forwards it without re-encoding.
	Data     []byte
	Since    uint64 // valid when HasSince
	HasSince bool
	Seq      uint64 // valid when HasSeq
	HasSeq   bool
	Producer []byte // optional producer id (exactly-once work)
	PSeq     uint64 // producer sequence, valid when HasPSeq
	HasPSeq  bool
	// UserID is the client-supplied user name of a join (presence).
	UserID []byte
	// Info is the raw encoded "info" value of a join: client information
	// shown in presence answers.
	Info      []byte
	Cursor    uint64 // presence paging: valid when HasCursor
	HasCursor bool
	Limit     uint64 // presence paging: valid when HasLimit
	HasLimit  bool
	// Token is the credential of an auth message (a JWT), unescaped.
	Token []byte
}

// Reset clears e for reuse without releasing anything it points to.
func (e *Envelope) Reset() { *e = Envelope{} }

// Error is a protocol error. Code is one of the codes listed in the package
// documentation and is what the engine sends back in an "error" answer;
// Message is human-readable text for the same answer.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "protocol: " + e.Code + ": " + e.Message }

// Error codes.
const (
	CodeBadJSON      = "bad_json"
	CodeBadMsgpack   = "bad_msgpack"
	CodeMissingType  = "missing_type"
	CodeUnknownType  = "unknown_type"
	CodeBadField     = "bad_field"
	CodeMissingRoom  = "missing_room"
	CodeRoomTooLong  = "room_too_long"
	CodeInvalidRoom  = "invalid_room"
	maxTypeNameInMsg = 64 // bytes of an unknown type name quoted in its error
)

// Pre-built errors: the decode error paths (except unknown_type, which names
// the type) allocate nothing. Callers must not modify them.
var (
	errMissingType   = &Error{CodeMissingType, `message has no "type" field`}
	errTypeNotStr    = &Error{CodeBadField, `"type" must be a string`}
	errRoomNotStr    = &Error{CodeBadField, `"room" must be a string`}
	errStreamNotStr  = &Error{CodeBadField, `"stream" must be a string`}
	errProdNotStr    = &Error{CodeBadField, `"producer" must be a string`}
	errSinceNotUint  = &Error{CodeBadField, `"since" must be a non-negative integer`}
	errSeqNotUint    = &Error{CodeBadField, `"seq" must be a non-negative integer`}
	errPSeqNotUint   = &Error{CodeBadField, `"pseq" must be a non-negative integer`}
	errUserNotStr    = &Error{CodeBadField, `"user_id" must be a string`}
	errCursorNotUint = &Error{CodeBadField, `"cursor" must be a non-negative integer`}
	errLimitNotUint  = &Error{CodeBadField, `"limit" must be a non-negative integer`}
	errTokenNotStr   = &Error{CodeBadField, `"token" must be a string`}

	errMissingRoom = &Error{CodeMissingRoom, "room name is empty"}
	errRoomTooLong = &Error{CodeRoomTooLong, "room name is too long"}
	errInvalidRoom = &Error{CodeInvalidRoom, "room name has control characters or invalid UTF-8"}
)

func unknownTypeError(name []byte) *Error {
	if len(name) > maxTypeNameInMsg {
		name = name[:maxTypeNameInMsg]
	}
	return &Error{CodeUnknownType, "unknown message type " + quoteForMessage(name)}
}

// quoteForMessage renders s as a JSON string for inclusion in an error
// message, so control characters and invalid UTF-8 stay harmless.
func quoteForMessage(s []byte) string {
	return string(AppendJSONString(make([]byte, 0, len(s)+2), s))
}

// ValidRoomName checks the syntax of a room name: not empty
// ("missing_room"), at most maxLen bytes ("room_too_long"; maxLen <= 0 means
// no limit), valid UTF-8 with no control character below 0x20
// ("invalid_room"). It returns nil or an *Error and does not allocate.
//
// The decoder does not call it: which messages need a room, and the limit,
// are the engine's policy.
func ValidRoomName(name []byte, maxLen int) error {
	if len(name) == 0 {
		return errMissingRoom
	}
	if maxLen > 0 && len(name) > maxLen {
		return errRoomTooLong
	}
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if c < 0x20 {
				return errInvalidRoom
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		if r == utf8.RuneError && size == 1 {
			return errInvalidRoom
		}
		i += size
	}
	return nil
}

// field identifies a known envelope key.
type field uint8

const (
	fieldUnknown field = iota
	fieldType
	fieldRoom
	fieldStream
	fieldID
	fieldData
	fieldSince
	fieldSeq
	fieldProducer
	fieldPSeq
	fieldUserID
	fieldInfo
	fieldCursor
	fieldLimit
	fieldToken
)

func lookupField(key []byte) field {
	switch string(key) { // no allocation
	case "type":
		return fieldType
	case "room":
		return fieldRoom
	case "stream":
		return fieldStream
	case "id":
		return fieldID
	case "data":
		return fieldData
	case "since":
		return fieldSince
	case "seq":
		return fieldSeq
	case "producer":
		return fieldProducer
	case "pseq":
		return fieldPSeq
	case "user_id":
		return fieldUserID
	case "info":
		return fieldInfo
	case "cursor":
		return fieldCursor
	case "limit":
		return fieldLimit
	case "token":
		return fieldToken
	}
	return fieldUnknown
}

// fieldErrors records problems found while walking a message so that the
// whole input is still validated before one error is chosen (see finish).
type fieldErrors struct {
	typeErr  *Error // "type" present but not a string
	fieldErr *Error // first other known field with the wrong kind
}

// finish picks the error to report once the input proved well-formed:
// a non-string "type", then a missing type, then an unknown type, then the
// first badly typed field. It also sets e.Type.
func (fe *fieldErrors) finish(e *Envelope) error {
	if fe.typeErr != nil {
		return fe.typeErr
	}
	if e.TypeName == nil {
		return errMissingType
	}
	t := ParseType(e.TypeName)
	if t == TypeUnknown {
		return unknownTypeError(e.TypeName)
	}
	if fe.fieldErr != nil {
		return fe.fieldErr
	}
	e.Type = t
	return nil
}

func (fe *fieldErrors) bad(err *Error) {
	if fe.fieldErr == nil {
		fe.fieldErr = err
	}
}

func notStringErr(f field) *Error {
	switch f {
	case fieldRoom:
		return errRoomNotStr
	case fieldStream:
		return errStreamNotStr
	case fieldProducer:
		return errProdNotStr
	case fieldUserID:
		return errUserNotStr
	case fieldToken:
		return errTokenNotStr
	}
	return errTypeNotStr
}

func notUintErr(f field) *Error {
	switch f {
	case fieldSince:
		return errSinceNotUint
	case fieldSeq:
		return errSeqNotUint
	case fieldCursor:
		return errCursorNotUint
	case fieldLimit:
		return errLimitNotUint
	}
	return errPSeqNotUint
}

// setString stores a decoded string field; type errors are kept separately.
func (fe *fieldErrors) setString(e *Envelope, f field, s []byte) {
	switch f {
	case fieldType:
		e.TypeName = s
	case fieldRoom:
		e.Room = s
	case fieldStream:
		e.Stream = s
	case fieldProducer:
		e.Producer = s
	case fieldUserID:
		e.UserID = s
	case fieldToken:
		e.Token = s
	}
}

func (fe *fieldErrors) notString(e *Envelope, f field) {
	if f == fieldType {
		e.TypeName = nil
		fe.typeErr = errTypeNotStr
		return
	}
	fe.bad(notStringErr(f))
}

func setUint(e *Envelope, f field, v uint64) {
	switch f {
	case fieldSince:
		e.Since, e.HasSince = v, true
	case fieldSeq:
		e.Seq, e.HasSeq = v, true
	case fieldPSeq:
		e.PSeq, e.HasPSeq = v, true
	case fieldCursor:
		e.Cursor, e.HasCursor = v, true
	case fieldLimit:
		e.Limit, e.HasLimit = v, true
	}
}

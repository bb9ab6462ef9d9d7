// Package protocol is the codec of streamd's wire protocol v1 (DESIGN.md,
// "Wire protocol v1"): text frames carry one JSON object, binary frames one
// msgpack map with the same fields.
//
// # What it owns
//
//   - Envelope decoding: Decoder.DecodeJSON and Decoder.DecodeMsgpack turn a
//     client → server frame payload into an Envelope (type, room, stream, id,
//     data, since, seq, producer, pseq, user_id, info, cursor, limit, token)
//     after validating the whole payload.
//   - Payload encoding: AppendXJSON / AppendXMsgpack build the server →
//     client payloads (welcome, joined, left, message, ack, pong, error,
//     result, authenticated, the welcome of a connection that must
//     authenticate, and the error about one room), plus AppendJSONString
//     and AppendMsgpackString.
//   - Transcoding: JSONToMsgpack and MsgpackToJSON convert one raw value (an
//     id or a data payload) for a receiver that uses the other encoding.
//   - ValidRoomName: the syntax of a room name; BearerToken: the token of
//     an `Authorization: Bearer` header (the upgrade's, the admin API's).
//
// It owns no policy: which message needs which field, length limits and
// answers belong to engine/. It imports nothing of streamd's and no third-
// party package (tests use vmihailenco/msgpack and rapid as references).
//
// # Raw values
//
// "id" and "data" are never decoded into Go values. The Envelope keeps the
// exact bytes of the value as sent (a JSON text span, or a msgpack value
// span), and the encoders splice such bytes in unchanged, so a payload that is
// only forwarded is never re-encoded. A raw value may be spliced only into a
// payload of the same encoding; otherwise transcode it first.
//
// # Lifetimes (who may hold what, and until when)
//
// Every []byte in an Envelope aliases the decoded input, except string fields
// of a JSON message that contained escape sequences, which alias the
// Decoder's scratch buffer. They are valid until the caller reuses or
// modifies the input buffer, or calls Decode again on the same Decoder,
// whichever comes first. Returned slices are capacity-limited, so appending
// to one never overwrites its neighbours. Copy what must outlive the frame.
//
// Encoders return dst extended; they keep no reference to any argument.
//
// # Concurrency
//
// A Decoder is single-goroutine (one per event loop). Everything else is a
// pure function, safe from any goroutine. Returned *Error values may be
// shared package-level values: never modify one.
//
// # Zero-allocation rules
//
//   - Decoding allocates nothing in steady state: JSON strings without
//     escapes alias the input; escaped ones are unescaped into the Decoder's
//     scratch buffer, sized once per call to the message and reused across
//     calls. Type names and keys are matched without string conversion. The
//     only allocating path is the message of an "unknown_type" error, which
//     quotes the type name.
//   - Encoders allocate only when dst lacks capacity: callers pass pooled or
//     pre-sized buffers.
//   - Transcoders are the cold path and may allocate.
//
// # Validation
//
// DecodeJSON accepts exactly one JSON object (RFC 8259) with optional
// surrounding whitespace; every nested value is checked, including unknown
// fields, string escapes (\u surrogates accepted loosely) and number syntax.
// DecodeMsgpack accepts exactly one msgpack map; every value, including ext
// values and nested containers, is checked for completeness. Both limit
// nesting to 64 levels (the top-level object is level 1). Unknown fields are
// skipped; for duplicate keys the last value wins, but a known field with the
// wrong kind is reported even if a later duplicate is well-formed.
//
// # Error codes
//
// Errors are *Error{Code, Message}. When several apply, the first in this
// order is reported:
//
//	bad_json      malformed JSON (DecodeJSON, JSONToMsgpack)
//	bad_msgpack   malformed msgpack: not a map, truncated, trailing bytes,
//	              0xc1, too deep (DecodeMsgpack, MsgpackToJSON)
//	bad_field     "type" is present but not a string
//	missing_type  no "type" field
//	unknown_type  "type" names no client → server message (the message
//	              quotes the name)
//	bad_field     a known field with the wrong kind: room, stream, producer
//	              not a string (str or bin in msgpack); since, seq, pseq not
//	              a non-negative integer (JSON: digits only, no fraction or
//	              exponent; msgpack: any int or uint format); token not a
//	              string
//
// ValidRoomName adds missing_room, room_too_long and invalid_room.
package protocol

// Package wire is the subset of the streamd v1 protocol (JSON text frames)
// that the reference servers in bench/peers speak, shared so that every peer
// pays the same decode and encode cost: encoding/json to decode what a client
// sends, byte splicing to build what the server sends, and the publish's data
// forwarded verbatim.
package wire

import (
	"encoding/json"
	"strconv"
)

// Inbound is a client frame: join, publish or ping.
type Inbound struct {
	Type string          `json:"type"`
	Room string          `json:"room"`
	Data json.RawMessage `json:"data"`
}

// Parse decodes one client text frame. Data is a copy, safe to keep.
func Parse(b []byte) (Inbound, error) {
	var in Inbound
	err := json.Unmarshal(b, &in)
	return in, err
}

// Fixed server frames.
var (
	Welcome = []byte(`{"type":"welcome"}`)
	Pong    = []byte(`{"type":"pong"}`)
)

// Quote returns a room name as a JSON string literal; peers compute it once
// per room.
func Quote(room string) []byte {
	b, _ := json.Marshal(room)
	return b
}

// AppendJoined appends {"type":"joined","room":R,"seq":N}.
func AppendJoined(dst, quotedRoom []byte, seq uint64) []byte {
	dst = append(dst, `{"type":"joined","room":`...)
	dst = append(dst, quotedRoom...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendMessage appends {"type":"message","room":R,"seq":N,"data":D} with D
// verbatim (null when the publish had none).
func AppendMessage(dst, quotedRoom []byte, seq uint64, data []byte) []byte {
	dst = append(dst, `{"type":"message","room":`...)
	dst = append(dst, quotedRoom...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"data":`...)
	if len(data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

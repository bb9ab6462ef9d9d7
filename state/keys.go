package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Key space. Every Badger key the package writes starts with one tag byte;
// doc.go draws the full layout.
const (
	tagMeta     = 0x00 // store metadata: tagMeta + name
	tagKV       = 0x01 // keyed state: tagKV + u16 len(ns) + ns + key
	tagLog      = 0x02 // room log entry: tagLog + u16 len(room) + room + u64 seq
	tagLogHead  = 0x03 // room log head metadata: tagLogHead + room
	tagLogTail  = 0x04 // room log tail metadata: tagLogTail + room
	maxNameLen  = math.MaxUint16
	logEntryHdr = 8 // u64 append time (unix ns) before the data
)

// formatKey holds the format version inside the database (beside the
// STREAMD-FORMAT file), so a directory whose file was lost or swapped is
// still recognised.
var formatKey = []byte{tagMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// ErrBadKey is returned for a key that Key/AppendKey did not make: the
// keyed-state calls accept only keyed-state keys, so they cannot reach the
// room log or the store's metadata.
var ErrBadKey = errors.New("state: not a keyed-state key (build keys with state.Key or state.AppendKey)")

// Key returns the keyed-state key of key in namespace:
//
//	0x01 | u16 big-endian len(namespace) | namespace | key
//
// Keys of one namespace are contiguous and sorted by key, so Key(ns, p) is
// the Scan prefix of every key of ns that starts with p, and Key(ns, "")
// the prefix of the whole namespace. It panics if namespace is longer than
// 65535 bytes. Badger caps a whole key at 65000 bytes; longer keys fail at
// write time.
func Key(namespace, key string) []byte {
	dst := make([]byte, 0, 3+len(namespace)+len(key))
	return append(appendNamespace(dst, namespace), key...)
}

// AppendKey appends the keyed-state key of key in namespace to dst and
// returns the extended slice (no allocation when dst has room).
func AppendKey(dst []byte, namespace string, key []byte) []byte {
	return append(appendNamespace(dst, namespace), key...)
}

func appendNamespace(dst []byte, namespace string) []byte {
	if len(namespace) > maxNameLen {
		panic(fmt.Sprintf("state: namespace of %d bytes is longer than %d", len(namespace), maxNameLen))
	}
	dst = append(dst, tagKV, byte(len(namespace)>>8), byte(len(namespace)))
	return append(dst, namespace...)
}

// SplitKey splits a keyed-state key made by Key or AppendKey into its
// namespace and key. Both results alias k.
func SplitKey(k []byte) (namespace, key []byte, ok bool) {
	if len(k) < 3 || k[0] != tagKV {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return nil, nil, false
	}
	return k[3 : 3+n], k[3+n:], true
}

func isKVKey(k []byte) bool {
	_, _, ok := SplitKey(k)
	return ok
}

// appendRoomPrefix appends tagLog + u16 len(room) + room: the prefix of
// every log entry of room.
func appendRoomPrefix(dst []byte, room string) []byte {
	dst = append(dst, tagLog, byte(len(room)>>8), byte(len(room)))
	return append(dst, room...)
}

// appendLogKey appends the key of entry seq of room.
func appendLogKey(dst []byte, room string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendRoomPrefix(dst, room), seq)
}

// parseLogKey returns the room (aliasing k) and seq of a log entry key.
func parseLogKey(k []byte) (room []byte, seq uint64, ok bool) {
	if len(k) < 11 || k[0] != tagLog {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) != 3+n+8 {
		return nil, 0, false
	}
	return k[3 : 3+n], binary.BigEndian.Uint64(k[3+n:]), true
}

func headKey(room string) []byte { return append([]byte{tagLogHead}, room...) }
func tailKey(room string) []byte { return append([]byte{tagLogTail}, room...) }

// checkRoom validates a room name for the log.
func checkRoom(room string) error {
	if room == "" {
		return errors.New("state: empty room name")
	}
	if len(room) > 4096 {
		return fmt.Errorf("state: room name of %d bytes is longer than 4096", len(room))
	}
	return nil
}

// logHead is the part of a room's log metadata that appends write (only
// the Batcher's committer). Count and Bytes are totals over every append
// ever made; what is retained is these minus logTail's.
type logHead struct {
	First uint64 // seq of the first append ever
	Last  uint64 // seq of the latest append
	Count uint64 // entries appended
	Bytes uint64 // data bytes appended
}

// logTail is the part that Trim writes: what retention removed. Keeping the
// two apart lets appends and trims of one room commit concurrently without
// Badger transaction conflicts.
type logTail struct {
	Through uint64 // every entry with seq ≤ Through has been removed
	Count   uint64 // entries removed
	Bytes   uint64 // data bytes removed
}

const metaVersion = 1

func (h logHead) marshal() []byte {
	b := make([]byte, 1, 33)
	b[0] = metaVersion
	b = binary.BigEndian.AppendUint64(b, h.First)
	b = binary.BigEndian.AppendUint64(b, h.Last)
	b = binary.BigEndian.AppendUint64(b, h.Count)
	return binary.BigEndian.AppendUint64(b, h.Bytes)
}

func (h *logHead) unmarshal(b []byte) error {
	if len(b) != 33 || b[0] != metaVersion {
		return fmt.Errorf("state: corrupt room log head metadata (%d bytes)", len(b))
	}
	h.First = binary.BigEndian.Uint64(b[1:])
	h.Last = binary.BigEndian.Uint64(b[9:])
	h.Count = binary.BigEndian.Uint64(b[17:])
	h.Bytes = binary.BigEndian.Uint64(b[25:])
	return nil
}

func (t logTail) marshal() []byte {
	b := make([]byte, 1, 25)
	b[0] = metaVersion
	b = binary.BigEndian.AppendUint64(b, t.Through)
	b = binary.BigEndian.AppendUint64(b, t.Count)
	return binary.BigEndian.AppendUint64(b, t.Bytes)
}

func (t *logTail) unmarshal(b []byte) error {
	if len(b) != 25 || b[0] != metaVersion {
		return fmt.Errorf("state: corrupt room log tail metadata (%d bytes)", len(b))
	}
	t.Through = binary.BigEndian.Uint64(b[1:])
	t.Count = binary.BigEndian.Uint64(b[9:])
	t.Bytes = binary.BigEndian.Uint64(b[17:])
	return nil
}

package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// TestDecodeAuth: the auth message carries its token as a string, in JSON
// (escapes unescaped) and msgpack (str or bin); any other kind is bad_field.
func TestDecodeAuth(t *testing.T) {
	var d Decoder
	var e Envelope
	if err := d.DecodeJSON([]byte(`{"type":"auth","id":3,"token":"a.b\u002ec"}`), &e); err != nil || e.Type != TypeAuth || string(e.Token) != "a.b.c" || string(e.ID) != "3" {
		t.Fatalf("json: %v %v %q %q", err, e.Type, e.Token, e.ID)
	}
	if e.Type.String() != "auth" || ParseType([]byte("auth")) != TypeAuth {
		t.Fatal("type name")
	}
	err := d.DecodeJSON([]byte(`{"type":"auth","token":42}`), &e)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeBadField || pe.Message != `"token" must be a string` {
		t.Fatalf("token 42: %v", err)
	}
	if err := d.DecodeMsgpack(mp(fixmap(2), "type", "auth", "token", "x.y.z"), &e); err != nil || e.Type != TypeAuth || string(e.Token) != "x.y.z" {
		t.Fatalf("msgpack: %v %q", err, e.Token)
	}
	if err := d.DecodeMsgpack(mp(fixmap(2), "type", "auth", "token", mpBin("x.y")), &e); err != nil || string(e.Token) != "x.y" {
		t.Fatalf("msgpack bin: %v %q", err, e.Token)
	}
	if err := d.DecodeMsgpack(mp(fixmap(2), "type", "auth", "token", 7), &e); !errors.As(err, &pe) || pe.Code != CodeBadField {
		t.Fatalf("msgpack token 7: %v", err)
	}
}

func TestEncodeAuthAnswers(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{string(AppendWelcomeAuthJSON(nil, 7, 25000)), `{"type":"welcome","session":"7","heartbeat_ms":25000,"auth":"required"}`},
		{string(AppendAuthenticatedJSON(nil, []byte("1"), []byte("alice"), 1700000000, false)), `{"type":"authenticated","id":1,"sub":"alice","exp":1700000000}`},
		{string(AppendAuthenticatedJSON(nil, nil, []byte("root"), 0, true)), `{"type":"authenticated","sub":"root","admin":true}`},
		{string(AppendRoomErrorJSON(nil, []byte(`"j"`), "forbidden", []byte("a\"b"), "no")), `{"type":"error","id":"j","code":"forbidden","room":"a\"b","message":"no"}`},
	} {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
		if !json.Valid([]byte(tt.got)) {
			t.Errorf("invalid JSON %s", tt.got)
		}
	}
	id := mp("req")
	for _, tt := range []struct {
		got  []byte
		want map[string]any
	}{
		{AppendWelcomeAuthMsgpack(nil, 7, 25000), map[string]any{"type": "welcome", "session": "7", "heartbeat_ms": uint16(25000), "auth": "required"}},
		{AppendAuthenticatedMsgpack(nil, id, []byte("alice"), 1700000000, true), map[string]any{"type": "authenticated", "id": "req", "sub": "alice", "exp": uint32(1700000000), "admin": true}},
		{AppendAuthenticatedMsgpack(nil, nil, []byte("bob"), 0, false), map[string]any{"type": "authenticated", "sub": "bob"}},
		{AppendRoomErrorMsgpack(nil, id, "forbidden", []byte("r"), "m"), map[string]any{"type": "error", "id": "req", "code": "forbidden", "room": "r", "message": "m"}},
	} {
		if got := mpDecode(t, tt.got); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("got %#v\nwant %#v", got, tt.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"BEARER x.y.z", "x.y.z", true},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		if tok, ok := BearerToken(tc.in); tok != tc.tok || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.in, tok, ok, tc.tok, tc.ok)
		}
	}
}

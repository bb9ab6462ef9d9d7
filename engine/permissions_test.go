package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// permsConfig is the engine of the permission tests: anonymous access on,
// HMAC tokens, and rules for three kinds of rooms.
func permsConfig(c *Config) {
	hmacAuth(c)
	c.Auth.Anonymous = true
	c.Rooms = []RoomPolicy{{Match: "pres.*", Presence: true}}
	c.Permissions = []PermissionRule{
		{Match: "staff.*", Join: []string{"authenticated"}, Publish: []string{"role:staff"}, History: []string{"nobody"}},
		{Match: "news.*", Publish: []string{"role:editor", "sub:bot-*"}},
		{Match: "chat.*", History: []string{"authenticated"}},
		{Match: "pres.*", Join: []string{"authenticated"}},
	}
}

// TestForbiddenTable: every action a rule, a token's rooms claim or the
// $sys.* policy denies is answered with exactly this error (and nothing
// else happens); the allowed neighbours of each case go through.
func TestForbiddenTable(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) { m(c); permsConfig(c) })
		tok := func(sub string, extra map[string]any) string { return hs(t, claims(sub, time.Hour, extra)) }
		ticket, err := e.AdminTicket("root", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var (
			anon   = ""
			plain  = tok("alice", nil)
			staff  = tok("sam", map[string]any{"roles": []string{"staff"}})
			editor = tok("ed", map[string]any{"roles": []string{"editor"}})
			bot    = tok("bot-7", nil)
			scoped = tok("sue", map[string]any{"rooms": map[string]any{"join": []string{"chat.mine", "staff.*"}, "publish": []string{"chat.mine"}}})
			noHist = tok("hal", map[string]any{"rooms": map[string]any{"join": []string{"chat.*"}, "publish": []string{"chat.*"}, "history": []string{"chat.open"}}})
			admin  = ticket
		)
		const (
			join    = `{"type":"join","id":1,"room":%q}`
			since   = `{"type":"join","id":1,"room":%q,"since":0}`
			publish = `{"type":"publish","id":1,"room":%q,"data":1}`
			pres    = `{"type":"presence","id":1,"room":%q}`
		)
		forbidden := func(room, msg string) string {
			return `{"type":"error","id":1,"code":"forbidden","room":"` + room + `","message":"` + msg + `"}`
		}
		cases := []struct {
			name, token, send, room string
			want                    string // the exact answer; "" = allowed (any non-error answer)
			action                  string
		}{
			// rules
			{"anonymous joins an authenticated-only room", anon, join, "staff.a", forbidden("staff.a", "not allowed to join this room"), "join"},
			{"authenticated joins it", plain, join, "staff.a", "", ""},
			{"authenticated without the role publishes", plain, publish, "staff.a", forbidden("staff.a", "not allowed to publish into this room"), "publish"},
			{"the role publishes", staff, publish, "staff.a", "", ""},
			{"history of a nobody-history room", staff, since, "staff.a", forbidden("staff.a", "not allowed to read this room's history"), "history"},
			{"anonymous publishes into news", anon, publish, "news.x", forbidden("news.x", "not allowed to publish into this room"), "publish"},
			{"anonymous joins news (no join list)", anon, join, "news.x", "", ""},
			{"editor publishes into news", editor, publish, "news.x", "", ""},
			{"a sub glob publishes into news", bot, publish, "news.x", "", ""},
			{"anonymous reads chat history", anon, since, "chat.x", forbidden("chat.x", "not allowed to read this room's history"), "history"},
			{"anonymous joins chat without since", anon, join, "chat.x", "", ""},
			{"authenticated reads chat history", plain, since, "chat.x", "", ""},
			{"anonymous presence of an authenticated-only room", anon, pres, "pres.a", forbidden("pres.a", "not allowed to see this room's presence"), "presence"},
			{"authenticated presence", plain, pres, "pres.a", "", ""},
			{"a room no rule matches", anon, publish, "free", "", ""},
			// token claims
			{"claim: join outside rooms.join", scoped, join, "chat.other", forbidden("chat.other", "not allowed to join this room"), "join"},
			{"claim: join inside", scoped, join, "chat.mine", "", ""},
			{"claim: publish outside rooms.publish", scoped, publish, "staff.a", forbidden("staff.a", "not allowed to publish into this room"), "publish"},
			{"claim: a room no rule matches is still limited", scoped, publish, "free", forbidden("free", "not allowed to publish into this room"), "publish"},
			{"claim: history defaults to rooms.join", scoped, since, "chat.mine", "", ""},
			{"claim: history outside rooms.history", noHist, since, "chat.x", forbidden("chat.x", "not allowed to read this room's history"), "history"},
			{"claim: history inside rooms.history", noHist, since, "chat.open", "", ""},
			// system rooms
			{"anonymous joins $sys.metrics", anon, join, "$sys.metrics", forbidden("$sys.metrics", "the $sys.* rooms are for admins"), "join"},
			{"authenticated joins $sys.alerts", plain, join, "$sys.alerts", forbidden("$sys.alerts", "the $sys.* rooms are for admins"), "join"},
			{"authenticated reads $sys history", plain, since, "$sys.metrics", forbidden("$sys.metrics", "the $sys.* rooms are for admins"), "join"},
			{"admin publishes into $sys.metrics", admin, publish, "$sys.metrics", forbidden("$sys.metrics", "only the engine publishes into $sys.* rooms"), "publish"},
			{"admin joins $sys.metrics", admin, join, "$sys.metrics", "", ""},
			{"admin passes every rule", admin, since, "staff.a", "", ""},
			// presence identity
			{"a user_id that is not the subject", plain, `{"type":"join","id":1,"room":%q,"user_id":"bob"}`, "pres.b", forbidden("pres.b", "user_id must be the token's subject"), "join"},
		}
		var sp sampler
		before := e.takeSnapshot(&sp).Forbidden
		wantCount := map[string]int64{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var c *client
				if tc.token == "" {
					c = dial(t, e, false)
				} else {
					c = dialToken(t, e, tc.token)
				}
				c.sendRaw(1, []byte(strings.Replace(tc.send, "%q", `"`+tc.room+`"`, 1)))
				got := c.readRaw()
				if tc.want != "" {
					if got != tc.want {
						t.Fatalf("got  %s\nwant %s", got, tc.want)
					}
					wantCount[tc.action]++
					// Nothing else happened: the connection goes on.
					c.send(map[string]any{"type": "ping", "id": 2})
					c.expect("pong")
					return
				}
				if strings.Contains(got, `"type":"error"`) {
					t.Fatalf("allowed action answered %s", got)
				}
			})
		}
		after := e.takeSnapshot(&sp).Forbidden
		for _, a := range actionNames {
			if d := after[a] - before[a]; d != wantCount[a] {
				t.Errorf("streamd_forbidden_total{action=%q} grew by %d, want %d", a, d, wantCount[a])
			}
		}
	})
}

// TestForbiddenCreatesNoRoom: a denied join or publish does not create its
// room (denied clients cannot use up max_rooms).
func TestForbiddenCreatesNoRoom(t *testing.T) {
	e := startEngine(t, permsConfig)
	c := dial(t, e, false)
	before := e.Stats().Rooms
	for i, room := range []string{"staff.q1", "news.q2", "$sys.q3"} {
		typ := "join"
		if i > 0 {
			typ = "publish"
		}
		c.send(map[string]any{"type": typ, "room": room, "data": 1})
		if got := c.expect("error"); got["code"] != CodeForbidden {
			t.Fatalf("%s %s: %v", typ, room, got)
		}
	}
	if n := e.Stats().Rooms; n != before {
		t.Fatalf("rooms %d → %d after denied actions", before, n)
	}
	// The denials as Prometheus sees them.
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "streamd_forbidden_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["join"] != 1 || got["publish"] != 2 || got["history"] != 0 || got["presence"] != 0 {
		t.Fatalf("streamd_forbidden_total = %v, want join 1, publish 2", got)
	}
	if st := e.Stats(); st.Forbidden != 3 {
		t.Fatalf("Stats.Forbidden = %d, want 3", st.Forbidden)
	}
}

// TestPublishRecheckedAfterRefresh: the publish permission remembered
// for a room is decided again when the identity changes.
func TestPublishRecheckedAfterRefresh(t *testing.T) {
	e := startEngine(t, permsConfig)
	c := dialToken(t, e, hs(t, claims("ed", time.Hour, map[string]any{"roles": []string{"editor"}})))
	c.send(map[string]any{"type": "publish", "room": "news.a", "id": 1, "data": 1})
	c.expect("ack")
	c.send(map[string]any{"type": "auth", "token": hs(t, claims("ed", time.Hour, nil))}) // the role is gone
	c.expect("authenticated")
	c.send(map[string]any{"type": "publish", "room": "news.a", "id": 2, "data": 1})
	if got := c.expect("error"); got["code"] != CodeForbidden {
		t.Fatalf("%v", got)
	}
}

// TestPresenceUserIsSubject: in a presence room an authenticated member
// is its token's subject (user_id absent or equal).
func TestPresenceUserIsSubject(t *testing.T) {
	e := startEngine(t, permsConfig)
	c := dialToken(t, e, hs(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}))
	c.send(map[string]any{"type": "join", "room": "pres.x"})
	c.expect("joined")
	if n := c.expect("user_joined"); n["user_id"] != "alice" {
		t.Fatalf("notice %v, want user_id alice", n)
	}
	d := dialToken(t, e, hs(t, claims("dave", time.Hour, nil)))
	d.send(map[string]any{"type": "join", "room": "pres.x", "user_id": "dave"})
	d.expect("joined")
	if n := d.expect("user_joined"); n["user_id"] != "dave" {
		t.Fatalf("notice %v", n)
	}
	pg, err := e.Presence("pres.x", 0, 10)
	if err != nil || len(pg.Members) != 2 || pg.Members[0].UserID != "alice" || pg.Members[1].UserID != "dave" {
		t.Fatalf("presence %+v %v", pg, err)
	}
}

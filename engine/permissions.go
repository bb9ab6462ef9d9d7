package engine

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"streamd/protocol"
)

// Permissions (docs/security.md). What a connection may do in a room is
// decided by two things, and both must allow it:
//
//   - the first rule of Config.Permissions whose match fits the room
//     (no rule: anyone who may connect may do everything), and
//   - the token's `rooms` claim, when the token has one (globs for join,
//     publish and history).
//
// An admin (a token with "admin": true) passes both. The system rooms
// ($sys.*) are outside the rules: only admins may join them (and read
// their history or presence), and nobody publishes into them but the
// engine.
//
// Joins, history and presence reads are checked when they are asked for.
// A publish is checked once per (connection, room): the room a connection
// was last allowed to publish to is remembered, so the publish path costs
// a pointer comparison (a new identity forgets it).

// PermissionRule is one entry of Config.Permissions: who may join,
// publish to and read the history of the rooms that Match fits (a
// path.Match glob, as in RoomPolicy). Each list holds who-terms:
//
//	anyone         every connection (anonymous ones too, where allowed)
//	anonymous      connections without a token
//	authenticated  connections with a valid token
//	admin          tokens with "admin": true (admins pass every rule anyway)
//	sub:GLOB       tokens whose subject matches GLOB
//	role:NAME      tokens whose "roles" claim holds NAME
//	nobody         no one (but admins)
//
// An absent list does not restrict that action (as [anyone]).
type PermissionRule struct {
	Match   string   `yaml:"match" json:"match"`
	Join    []string `yaml:"join" json:"join"`
	Publish []string `yaml:"publish" json:"publish"`
	History []string `yaml:"history" json:"history"`
}

// action is what a permission is asked for.
type action uint8

const (
	actJoin     action = iota // join a room
	actPublish                // publish into it
	actHistory                // join with since (a replay of its history)
	actPresence               // presence / presence_stats queries (judged as join)
	nActions
)

var actionNames = [nActions]string{"join", "publish", "history", "presence"}

// Messages of the forbidden answers (constant: a denial allocates nothing).
var forbiddenMsg = [nActions]string{
	"not allowed to join this room",
	"not allowed to publish into this room",
	"not allowed to read this room's history",
	"not allowed to see this room's presence",
}

const (
	msgSysJoin    = "the $sys.* rooms are for admins"
	msgSysPublish = "only the engine publishes into $sys.* rooms"
	msgUserID     = "user_id must be the token's subject"
)

// who is one compiled who-term list.
type who struct {
	any, anon, authed, admin bool
	subs, roles              []string
}

// permRule is a compiled PermissionRule.
type permRule struct {
	match string
	acts  [3]*who // join, publish, history; nil: no restriction
}

func compileWho(terms []string) (*who, error) {
	if terms == nil {
		return nil, nil
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("an empty list: write [nobody] to let no one, or leave the key out to let anyone")
	}
	w := &who{}
	for _, t := range terms {
		switch {
		case t == "anyone":
			w.any = true
		case t == "anonymous":
			w.anon = true
		case t == "authenticated":
			w.authed = true
		case t == "admin", t == "nobody":
			w.admin = true // admins pass every rule; nobody else does
		case strings.HasPrefix(t, "sub:") && len(t) > 4:
			if _, err := path.Match(t[4:], ""); err != nil {
				return nil, fmt.Errorf("%q: %v", t, err)
			}
			w.subs = append(w.subs, t[4:])
		case strings.HasPrefix(t, "role:") && len(t) > 5:
			w.roles = append(w.roles, t[5:])
		default:
			return nil, fmt.Errorf("%q: want anyone, anonymous, authenticated, admin, nobody, sub:GLOB or role:NAME", t)
		}
	}
	return w, nil
}

// allows reports whether id is in the list.
func (w *who) allows(id *identity) bool {
	if w == nil || w.any || id.admin {
		return true
	}
	if !id.authed {
		return w.anon
	}
	if w.authed {
		return true
	}
	for _, p := range w.subs {
		if ok, _ := path.Match(p, id.sub); ok {
			return true
		}
	}
	for _, r := range w.roles {
		if slices.Contains(id.roles, r) {
			return true
		}
	}
	return false
}

func validatePermissions(rules []PermissionRule) []error {
	_, errs := compilePermissions(rules)
	return errs
}

func compilePermissions(rules []PermissionRule) ([]*permRule, []error) {
	var out []*permRule
	var errs []error
	for i, r := range rules {
		pr := &permRule{match: r.Match}
		switch {
		case r.Match == "":
			errs = append(errs, fmt.Errorf("engine: permissions[%d].match is empty: use \"*\" for every room", i))
		case strings.HasPrefix(r.Match, "$sys."):
			errs = append(errs, fmt.Errorf("engine: permissions[%d].match %q: the $sys.* rooms are admin-only; rules do not apply to them", i, r.Match))
		default:
			if _, err := path.Match(r.Match, ""); err != nil {
				errs = append(errs, fmt.Errorf("engine: permissions[%d].match %q: %v", i, r.Match, err))
			}
		}
		for k, list := range [3][]string{r.Join, r.Publish, r.History} {
			w, err := compileWho(list)
			if err != nil {
				errs = append(errs, fmt.Errorf("engine: permissions[%d].%s: %v", i, actionNames[k], err))
			}
			pr.acts[k] = w
		}
		out = append(out, pr)
	}
	return out, errs
}

// ruleFor returns the first rule whose match fits name (nil: none).
func (e *Engine) ruleFor(name string) *permRule {
	for _, r := range e.perms {
		if ok, _ := path.Match(r.match, name); ok {
			return r
		}
	}
	return nil
}

// claimAllows reports whether the token's rooms claim lets it act in room.
func (rc *roomClaims) allows(act action, room string) bool {
	var list []string
	switch act {
	case actPublish:
		list = rc.Publish
	case actHistory:
		list = rc.History
		if list == nil {
			list = rc.Join
		}
	default:
		list = rc.Join
	}
	for _, p := range list {
		if ok, _ := path.Match(p, room); ok {
			return true
		}
	}
	return false
}

// permitted decides whether id may do act in the room called name, whose
// rule is rule (found by ruleFor). The $sys.* rooms are not decided here.
func permitted(id *identity, rule *permRule, name string, act action) bool {
	if id.admin {
		return true
	}
	k := act
	if k == actPresence {
		k = actJoin
	}
	if rule != nil && !rule.acts[k].allows(id) {
		return false
	}
	if id.rooms != nil && !id.rooms.allows(k, name) {
		return false
	}
	return true
}

// access checks that s may do act in the room called name (a valid room
// name) and, if so, returns nil; otherwise it answers `forbidden`,
// counts the denial and returns false. r is the room when it exists
// already (its rule is cached there), else nil.
func (ls *loopState) access(s *session, id []byte, name []byte, r *room, act action) bool {
	who := s.who
	if bytes.HasPrefix(name, sysPrefix) {
		if who.admin && act != actPublish {
			return true
		}
		msg := msgSysJoin
		if act == actPublish {
			msg = msgSysPublish
		}
		ls.forbid(s, id, name, act, msg)
		return false
	}
	if !who.admin && (ls.e.perms != nil || who.rooms != nil) {
		var rule *permRule
		var nm string
		if r != nil {
			rule, nm = r.perm, r.name
		} else {
			nm = string(name)
			rule = ls.e.ruleFor(nm)
		}
		if !permitted(who, rule, nm, act) {
			ls.forbid(s, id, name, act, forbiddenMsg[act])
			return false
		}
	}
	return true
}

// forbid answers a denial and counts it (errors, the forbidden code, and
// streamd_forbidden_total{action}).
func (ls *loopState) forbid(s *session, id, room []byte, act action, msg string) {
	ls.counters.errors.Add(1)
	ls.metrics.errCodes[errorCodeIndex(CodeForbidden)].Inc()
	ls.metrics.forbidden[act].Inc()
	b := ls.np.BeginFrame(64 + len(id) + len(room) + len(msg))
	if s.enc == encJSON {
		b = protocol.AppendRoomErrorJSON(b, id, CodeForbidden, room, msg)
	} else {
		b = protocol.AppendRoomErrorMsgpack(b, id, CodeForbidden, room, msg)
	}
	s.write(ls.finish(s, b))
}

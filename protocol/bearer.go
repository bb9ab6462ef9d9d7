package protocol

import "strings"

// BearerToken returns the token of an `Authorization: Bearer <token>`
// header value (the scheme in any case, the token trimmed), and whether
// the value was one. The engine reads a client's token from the upgrade
// this way, and the admin API its own.
func BearerToken(header string) (string, bool) {
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:]), true
	}
	return "", false
}

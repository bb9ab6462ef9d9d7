package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"streamd/protocol"
)

// The admin API's own token (docs/security.md). With a token set, every
// admin endpoint but /healthz, /client.js, /client.d.ts (and /metrics with
// open_metrics) answers 401
// unless the request carries `Authorization: Bearer <token>`. A browser
// cannot set that header on a page load, so the dashboard logs in once
// with /dashboard/?token=<token>: the server answers with a cookie (a
// value derived from the token, HttpOnly, SameSite=Strict) and a redirect
// that drops the token from the address bar. The cookie is accepted on
// GET and HEAD only, so it never authorizes POST /reload or /ingest from
// another site's form.

// adminAuthConfig is the `admin_auth:` block of the config file.
type adminAuthConfig struct {
	// Token is the admin token (at least 16 characters). Prefer
	// TokenFile or STREAMD_ADMIN_TOKEN: config files are often readable
	// by more people than a secret should be.
	Token string `yaml:"token"`
	// TokenFile holds the token (surrounding whitespace trimmed).
	TokenFile string `yaml:"token_file"`
	// OpenMetrics leaves GET /metrics open (for a Prometheus scraper
	// without credentials); the other endpoints still need the token.
	OpenMetrics bool `yaml:"open_metrics"`
	// AllowOpen lets the admin server listen on an address other
	// machines can reach without a token. Off by default: such a config
	// is refused (the admin API can dump the state store and reload the
	// config).
	AllowOpen bool `yaml:"allow_open"`
}

// envAdminToken sets the admin token (over admin_auth), and is what
// `streamd top` and `streamd backup --admin` send.
const envAdminToken = "STREAMD_ADMIN_TOKEN"

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 16

// adminCookie names the dashboard's login cookie.
const adminCookie = "streamd_admin"

// resolveAdminToken returns the token of the admin_auth block (the file
// read) or of the environment, which wins.
func resolveAdminToken(a adminAuthConfig, env *string) (string, error) {
	if env != nil && *env != "" {
		return checkAdminToken(strings.TrimSpace(*env), envAdminToken)
	}
	switch {
	case a.Token != "" && a.TokenFile != "":
		return "", errors.New("admin_auth: set token or token_file, not both")
	case a.TokenFile != "":
		b, err := os.ReadFile(a.TokenFile) // #nosec G304 -- the operator's configured secret file
		if err != nil {
			return "", fmt.Errorf("admin_auth.token_file: %w", err)
		}
		return checkAdminToken(strings.TrimSpace(string(b)), "admin_auth.token_file")
	case a.Token != "":
		return checkAdminToken(a.Token, "admin_auth.token")
	}
	return "", nil
}

func checkAdminToken(tok, where string) (string, error) {
	if len(tok) < minAdminToken {
		return "", fmt.Errorf("%s: the admin token has %d characters: want at least %d (e.g. `openssl rand -hex 32`)", where, len(tok), minAdminToken)
	}
	if strings.ContainsAny(tok, " \t\r\n\"\\,;") {
		return "", fmt.Errorf("%s: the admin token has whitespace, quotes, commas or semicolons: it must fit a header and a cookie", where)
	}
	return tok, nil
}

// loopbackAddr reports whether a HOST:PORT listens on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminGuard checks admin requests against the token.
type adminGuard struct {
	tokenSum    [sha256.Size]byte // SHA-256 of the token: compared in constant time
	cookie      string            // the login cookie's value
	openMetrics bool
}

// newAdminGuard returns nil when token is "" (no authentication).
func newAdminGuard(token string, openMetrics bool) *adminGuard {
	if token == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(token))
	_, _ = m.Write([]byte("streamd admin dashboard cookie v1")) // a hash never fails a Write
	return &adminGuard{tokenSum: sha256.Sum256([]byte(token)), cookie: base64.RawURLEncoding.EncodeToString(m.Sum(nil)), openMetrics: openMetrics}
}

// tokenOK compares a presented token with the admin token in constant
// time (hashes of equal length, so not even the length leaks).
func (g *adminGuard) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], g.tokenSum[:]) == 1
}

// allowed reports whether r may pass.
func (g *adminGuard) allowed(r *http.Request) bool {
	if tok, ok := protocol.BearerToken(r.Header.Get("Authorization")); ok {
		return g.tokenOK(tok)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if c, err := r.Cookie(adminCookie); err == nil {
			return subtle.ConstantTimeCompare([]byte(c.Value), []byte(g.cookie)) == 1
		}
	}
	return false
}

// wrap puts the guard in front of the admin mux.
func (g *adminGuard) wrap(next http.Handler) http.Handler {
	if g == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" || p == "/client.js" || p == "/client.d.ts" || (g.openMetrics && p == "/metrics") || g.allowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		// The dashboard's login: /dashboard/?token=T sets the cookie.
		if r.Method == http.MethodGet && strings.HasPrefix(p, "/dashboard") {
			if tok := r.URL.Query().Get("token"); tok != "" && g.tokenOK(tok) {
				// Secure only when the request came over TLS: the admin
				// server itself speaks plain HTTP (on loopback, or behind
				// a TLS proxy), where a Secure cookie would never return.
				http.SetCookie(w, &http.Cookie{Name: adminCookie, Value: g.cookie, Path: "/", HttpOnly: true, // #nosec G124 -- see above
					SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
				// Back to the page without the token (a fixed local path:
				// no open redirect).
				q := r.URL.Query()
				q.Del("token")
				target := "/dashboard/"
				if enc := q.Encode(); enc != "" {
					target += "?" + enc
				}
				http.Redirect(w, r, target, http.StatusSeeOther) // #nosec G710 -- a fixed local path; the query is re-encoded
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="streamd admin"`)
		http.Error(w, "unauthorized: the admin API needs `Authorization: Bearer <admin token>` (the dashboard: open /dashboard/?token=<admin token> once)", http.StatusUnauthorized)
	})
}

// setAdminToken adds STREAMD_ADMIN_TOKEN, when set, to a request of the
// admin API's clients (streamd top, streamd backup --admin).
func setAdminToken(req *http.Request) {
	if tok := strings.TrimSpace(os.Getenv(envAdminToken)); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
}

package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// The keys of the auth tests: made once per test binary (RSA key
// generation is slow under the race detector).
var (
	testHMAC   = []byte("0123456789abcdef0123456789abcdef-test-secret")
	testKeysMu sync.Mutex
	testRSA    *rsa.PrivateKey
	testEC     *ecdsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if testRSA == nil {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if testEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	return testRSA, testEC
}

// pemFile writes the public key of priv as a PEM file and returns its
// path and bytes.
func pemFile(t testing.TB, pub any) (string, []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// claims builds token claims: sub, exp in d from now, and extra.
func claims(sub string, d time.Duration, extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(d).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with method and key (kid set when not "").
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs(t testing.TB, c jwt.Claims) string { return sign(t, jwt.SigningMethodHS256, testHMAC, "", c) }

// hmacAuth configures an engine with the test HMAC secret.
func hmacAuth(c *Config) {
	c.Auth = AuthConfig{JWT: JWTConfig{HMACSecret: string(testHMAC)}}
}

// dialRaw opens a WebSocket to e with the query and headers given and
// does not read anything.
func dialRaw(t testing.TB, e *Engine, query string, h http.Header) *client {
	t.Helper()
	u := "ws://" + e.Addr().String() + "/ws"
	if query != "" {
		u += "?" + query
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(u, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

// dialToken opens a connection that authenticates with tok in the query
// and reads its welcome.
func dialToken(t testing.TB, e *Engine, tok string) *client {
	t.Helper()
	c := dialRaw(t, e, "token="+url.QueryEscape(tok), nil)
	if w := c.read(); w["type"] != "welcome" || w["auth"] != nil {
		t.Fatalf("first frame %v, want a plain welcome", w)
	}
	return c
}

// readRaw reads one text frame as it came.
func (c *client) readRaw() string {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

// expectClose reads until the server's close and returns its code.
func (c *client) expectClose(within time.Duration) int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, b, err := c.ws.ReadMessage()
		if err == nil {
			c.t.Logf("(frame before the close: %s)", b)
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("no close frame: %v", err)
	}
}

// TestAuthTokenWays: a token is taken from the query parameter, the
// Authorization header or the first message; each way the connection is
// the token's subject and works as usual.
func TestAuthTokenWays(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) { m(c); hmacAuth(c) })
		tok := hs(t, claims("alice", time.Hour, nil))

		t.Run("query", func(t *testing.T) {
			c := dialToken(t, e, tok)
			c.send(map[string]any{"type": "join", "room": "q", "id": 1})
			c.expect("joined")
		})
		t.Run("query_param renamed", func(t *testing.T) {
			e2 := startEngine(t, func(c *Config) { m(c); hmacAuth(c); c.Auth.QueryParam = "access_token" })
			c := dialRaw(t, e2, "access_token="+tok, nil)
			if w := c.read(); w["type"] != "welcome" || w["auth"] != nil {
				t.Fatalf("welcome %v", w)
			}
		})
		t.Run("header", func(t *testing.T) {
			c := dialRaw(t, e, "", http.Header{"Authorization": {"Bearer " + tok}})
			if w := c.read(); w["type"] != "welcome" || w["auth"] != nil {
				t.Fatalf("welcome %v", w)
			}
		})
		t.Run("first message", func(t *testing.T) {
			c := dialRaw(t, e, "", nil)
			if w := c.readRaw(); !strings.HasSuffix(w, `,"auth":"required"}`) {
				t.Fatalf("welcome %s, want auth required", w)
			}
			c.send(map[string]any{"type": "join", "room": "q", "id": 1})
			if got := c.readRaw(); got != `{"type":"error","id":1,"code":"unauthenticated","message":"authenticate first: send {\"type\":\"auth\",\"token\":…}"}` {
				t.Fatalf("join before auth: %s", got)
			}
			c.send(map[string]any{"type": "auth", "id": 2, "token": tok})
			exp := time.Now().Add(time.Hour).Unix()
			got := c.expect("authenticated")
			if got["sub"] != "alice" || num(got["id"]) != 2 || int64(num(got["exp"])) < exp-5 {
				t.Fatalf("authenticated = %v", got)
			}
			c.send(map[string]any{"type": "join", "room": "q", "id": 3})
			c.expect("joined")
		})
		t.Run("msgpack first message", func(t *testing.T) {
			c := dialRaw(t, e, "", nil)
			c.read() // welcome (JSON: nothing sent yet)
			b, _ := msgpackMarshal(map[string]any{"type": "auth", "token": tok})
			c.sendRaw(websocket.BinaryMessage, b)
			if got := c.expect("authenticated"); got["sub"] != "alice" {
				t.Fatalf("%v", got)
			}
		})
	})
}

// TestAuthRefused: every bad token is refused with an error naming the
// reason and the close code of the fault: 4002 for an expired token,
// 4001 for everything else; the same through the first message.
func TestAuthRefused(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	rsaFile, rsaPEM := pemFile(t, &rsaKey.PublicKey)
	ecFile, _ := pemFile(t, &ecKey.PublicKey)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, func(c *Config) {
		c.Auth = AuthConfig{Timeout: time.Minute, JWT: JWTConfig{HMACSecret: string(testHMAC), PublicKeyFiles: []string{rsaFile, ecFile},
			Issuer: "https://issuer.example", Audience: "streamd"}}
	})
	// Only RSA keys: an HMAC token can never verify, even signed with the
	// public key's bytes.
	eRSA := startEngine(t, func(c *Config) { c.Auth = AuthConfig{JWT: JWTConfig{PublicKeyFiles: []string{rsaFile}}} })
	ok := map[string]any{"iss": "https://issuer.example", "aud": "streamd"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("mallory", time.Hour, ok)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		eng     *Engine
		tok     string
		code    string
		close   int
		message string
	}{
		{"wrong signature", e, sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123"), "", claims("a", time.Hour, ok)), "unauthenticated", 4001, "token: signature is invalid"},
		{"RS256 signed by another key", e, sign(t, jwt.SigningMethodRS256, otherRSA, "", claims("a", time.Hour, ok)), "unauthenticated", 4001, "token: signature is invalid"},
		{"alg none", e, noneTok, "unauthenticated", 4001, "token: algorithm not accepted"},
		{"HS256 signed with the RSA public key (HMAC key configured too)", e, sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims("a", time.Hour, ok)), "unauthenticated", 4001, "token: signature is invalid"},
		{"HS256 signed with the RSA public key (RSA only)", eRSA, sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims("a", time.Hour, nil)), "unauthenticated", 4001, "token: algorithm not accepted"},
		{"HS256 claiming the ticket kid", eRSA, sign(t, jwt.SigningMethodHS256, rsaPEM, ticketKid, claims("a", time.Hour, jwt.MapClaims{"admin": true})), "unauthenticated", 4001, "token: signature is invalid"},
		{"expired", e, hs(t, claims("a", -time.Minute, ok)), "token_expired", 4002, "token: expired"},
		{"not yet valid", e, hs(t, claims("a", time.Hour, with(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}))), "unauthenticated", 4001, "token: token is not valid yet"},
		{"wrong issuer", e, hs(t, claims("a", time.Hour, with(map[string]any{"iss": "https://evil.example"}))), "unauthenticated", 4001, "token: token has invalid issuer"},
		{"wrong audience", e, hs(t, claims("a", time.Hour, with(map[string]any{"aud": "other"}))), "unauthenticated", 4001, "token: token has invalid audience"},
		{"no exp", e, hs(t, claims("a", time.Hour, with(map[string]any{"exp": nil}))), "unauthenticated", 4001, "token: token is missing required claim"},
		{"no sub", e, hs(t, claims("", time.Hour, ok)), "unauthenticated", 4001, "token: sub: empty, over 256 bytes, or with control characters"},
		{"bad rooms pattern", e, hs(t, claims("a", time.Hour, with(map[string]any{"rooms": map[string]any{"join": []string{"[x"}}}))), "unauthenticated", 4001, "token: rooms: a bad pattern"},
		{"malformed", e, "not.a.jwt", "unauthenticated", 4001, "token: token is malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := `{"type":"error","code":"` + tc.code + `","message":"` + tc.message + `"}`
			before := tc.eng.Stats().AuthFailures
			c := dialRaw(t, tc.eng, "token="+url.QueryEscape(tc.tok), nil)
			if got := c.readRaw(); got != want {
				t.Fatalf("query: got %s\nwant %s", got, want)
			}
			if code := c.expectClose(3 * time.Second); code != tc.close {
				t.Fatalf("query: close %d, want %d", code, tc.close)
			}
			// The same token in the first message.
			c = dialRaw(t, tc.eng, "", nil)
			c.read() // welcome, auth required
			c.send(map[string]any{"type": "auth", "id": 9, "token": tc.tok})
			if got, want := c.readRaw(), `{"type":"error","id":9,`+want[len(`{"type":"error",`):]; got != want {
				t.Fatalf("message: got %s\nwant %s", got, want)
			}
			if code := c.expectClose(3 * time.Second); code != tc.close {
				t.Fatalf("message: close %d, want %d", code, tc.close)
			}
			if n := tc.eng.Stats().AuthFailures - before; n != 2 {
				t.Fatalf("auth failures counted %d, want 2", n)
			}
		})
	}
	t.Run("valid RS256, ES256 and HS256 are accepted", func(t *testing.T) {
		for _, tok := range []string{
			sign(t, jwt.SigningMethodRS256, rsaKey, "", claims("r", time.Hour, ok)),
			sign(t, jwt.SigningMethodPS256, rsaKey, "", claims("p", time.Hour, ok)),
			sign(t, jwt.SigningMethodES256, ecKey, "", claims("e", time.Hour, ok)),
			hs(t, claims("h", time.Hour, ok)),
		} {
			dialToken(t, e, tok)
		}
	})
}

// TestAuthTimeoutAndAnonymousOff: with anonymous access off, a connection
// without a token is answered `unauthenticated` until it authenticates,
// and closed with 4001 when auth.timeout passes first.
func TestAuthTimeoutAndAnonymousOff(t *testing.T) {
	e := startEngine(t, func(c *Config) { hmacAuth(c); c.Auth.Timeout = 300 * time.Millisecond })
	c := dialRaw(t, e, "", nil)
	start := time.Now()
	if w := c.read(); w["auth"] != "required" {
		t.Fatalf("welcome %v", w)
	}
	c.send(map[string]any{"type": "publish", "room": "x", "data": 1})
	if got := c.readRaw(); got != `{"type":"error","code":"unauthenticated","message":"authenticate first: send {\"type\":\"auth\",\"token\":…}"}` {
		t.Fatalf("publish before auth: %s", got)
	}
	if got := c.readRaw(); got != `{"type":"error","code":"unauthenticated","message":"authentication timeout: no auth message in time"}` {
		t.Fatalf("timeout error: %s", got)
	}
	if code := c.expectClose(2 * time.Second); code != int(CloseUnauthenticated) {
		t.Fatalf("close %d, want 4001", code)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("closed after %v, want about 300ms (+ one auth tick)", d)
	}
	var sp sampler
	snap := e.takeSnapshot(&sp)
	if snap.AuthFailures["timeout"] != 1 || snap.AuthFailures["missing"] != 1 || snap.Errors[CodeUnauthenticated] != 2 {
		t.Fatalf("auth failures %v, errors %v", snap.AuthFailures, snap.Errors)
	}
}

// TestTokenExpiresMidConnection: an open connection whose token expires is
// told so and closed with 4002 within about a second of exp; a refresh
// before exp (same subject) keeps it open; a refresh for another subject
// closes it with 4003; a failed refresh changes nothing.
func TestTokenExpiresMidConnection(t *testing.T) {
	modes(t, func(t *testing.T, m func(*Config)) {
		e := startEngine(t, func(c *Config) { m(c); hmacAuth(c) })
		// exp has a one-second resolution: aim at a whole second ≥ 2 s away.
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		short := hs(t, jwt.MapClaims{"sub": "alice", "exp": exp.Unix()})

		t.Run("expiry", func(t *testing.T) {
			c := dialToken(t, e, short)
			c.send(map[string]any{"type": "join", "room": "exp"})
			c.expect("joined")
			_ = c.ws.SetReadDeadline(exp.Add(3 * time.Second))
			_, b, err := c.ws.ReadMessage()
			if err != nil || string(b) != `{"type":"error","code":"token_expired","message":"token expired"}` {
				t.Fatalf("before the close: %q %v", b, err)
			}
			if code := c.expectClose(3 * time.Second); code != int(CloseTokenExpired) {
				t.Fatalf("close %d, want 4002", code)
			}
			at := time.Now()
			if at.Before(exp) || at.After(exp.Add(time.Second)) {
				t.Fatalf("closed at %v, exp %v: want within a second after exp", at, exp)
			}
		})
		t.Run("refresh", func(t *testing.T) {
			c := dialToken(t, e, hs(t, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(2 * time.Second).Unix()}))
			// A refresh that does not verify changes nothing.
			c.send(map[string]any{"type": "auth", "id": 1, "token": "x.y.z"})
			if got := c.readRaw(); got != `{"type":"error","id":1,"code":"unauthenticated","message":"token: token is malformed"}` {
				t.Fatalf("bad refresh: %s", got)
			}
			later := time.Now().Add(time.Hour).Unix()
			c.send(map[string]any{"type": "auth", "id": 2, "token": hs(t, jwt.MapClaims{"sub": "bob", "exp": later})})
			if got := c.expect("authenticated"); int64(num(got["exp"])) != later || got["sub"] != "bob" {
				t.Fatalf("refresh answer %v", got)
			}
			time.Sleep(3500 * time.Millisecond) // past the first token's exp and an auth tick
			c.send(map[string]any{"type": "ping", "id": 3})
			c.expect("pong")
			// Another subject: refused and closed.
			c.send(map[string]any{"type": "auth", "id": 4, "token": hs(t, claims("mallory", time.Hour, nil))})
			if got := c.readRaw(); got != `{"type":"error","id":4,"code":"forbidden","message":"a refresh must carry the connection's subject"}` {
				t.Fatalf("subject change: %s", got)
			}
			if code := c.expectClose(3 * time.Second); code != int(CloseForbidden) {
				t.Fatalf("close %d, want 4003", code)
			}
		})
	})
}

// TestAnonymousUpgradesWithAuth: an anonymous connection may authenticate
// later and is then its token's subject.
func TestAnonymousUpgradesWithAuth(t *testing.T) {
	e := startEngine(t, func(c *Config) {
		hmacAuth(c)
		c.Auth.Anonymous = true
		c.Permissions = []PermissionRule{{Match: "staff.*", Join: []string{"authenticated"}}}
	})
	c := dial(t, e, false)
	c.send(map[string]any{"type": "join", "room": "staff.a", "id": 1})
	if got := c.expect("error"); got["code"] != CodeForbidden {
		t.Fatalf("%v", got)
	}
	c.send(map[string]any{"type": "auth", "token": hs(t, claims("carol", time.Hour, nil))})
	c.expect("authenticated")
	c.send(map[string]any{"type": "join", "room": "staff.a", "id": 2})
	c.expect("joined")
}

// TestAdminTicket: the engine's own tickets make a connection an admin
// (what the dashboard uses for $sys.*), with or without JWT config.
func TestAdminTicket(t *testing.T) {
	e := startEngine(t, nil) // anonymous, no keys
	tok, err := e.AdminTicket("dashboard", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := dialToken(t, e, tok)
	c.send(map[string]any{"type": "join", "room": RoomMetrics})
	c.expect("joined")
	if _, err := e.AdminTicket("x", 0); err == nil {
		t.Fatal("a ticket without a lifetime")
	}
}

// TestJWKS: keys come from a JWKS URL by kid; a token naming a kid the
// set lacks makes the engine fetch the set again (rotation).
func TestJWKS(t *testing.T) {
	rsaKey, ecKey := testKeys(t)
	old := jwksMinGap
	jwksMinGap = 100 * time.Millisecond
	t.Cleanup(func() { jwksMinGap = old })
	var mu sync.Mutex
	keys := []map[string]any{jwkOf("k1", &rsaKey.PublicKey)}
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(srv.Close)
	e := startEngine(t, func(c *Config) { c.Auth = AuthConfig{JWT: JWTConfig{JWKSURL: srv.URL + "/jwks.json"}} })
	waitFor(t, "the first JWKS fetch", func() bool { return fetches.Load() >= 1 })
	dialToken(t, e, sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims("a", time.Hour, nil)))

	// A new key, k2, appears: the first token naming it is refused (the
	// set in memory lacks it) and asks for a fetch; then it verifies.
	mu.Lock()
	keys = append(keys, jwkOf("k2", &ecKey.PublicKey))
	mu.Unlock()
	tok2 := sign(t, jwt.SigningMethodES256, ecKey, "k2", claims("b", time.Hour, nil))
	time.Sleep(150 * time.Millisecond) // past jwksMinGap
	c := dialRaw(t, e, "token="+tok2, nil)
	if got := c.readRaw(); got != `{"type":"error","code":"unauthenticated","message":"token: signature is invalid"}` {
		t.Fatalf("unknown kid: %s", got)
	}
	waitFor(t, "a refetch for kid k2", func() bool { return fetches.Load() >= 2 })
	waitFor(t, "k2 in the set", func() bool { _, ok := (*e.auth.jwks.keys.Load())["k2"]; return ok })
	dialToken(t, e, tok2)
	// A JWKS key never verifies another kind of token: the RSA key k1
	// bytes as an HMAC secret.
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	c = dialRaw(t, e, "token="+sign(t, jwt.SigningMethodHS256, der, "k1", claims("m", time.Hour, nil)), nil)
	if got := c.readRaw(); !strings.Contains(got, `"code":"unauthenticated"`) {
		t.Fatalf("HS256 with kid k1: %s", got)
	}
}

func jwkOf(kid string, pub any) map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, _ := k.Bytes() // 0x04 || X || Y
		n := (len(b) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(b[1 : 1+n]), "y": enc(b[1+n:])}
	}
	panic("jwkOf")
}

// TestAuthConfigErrors: configs that cannot work are refused with a
// message that says what to do.
func TestAuthConfigErrors(t *testing.T) {
	rsaKey, _ := testKeys(t)
	dir := t.TempDir()
	priv := filepath.Join(dir, "priv.pem")
	_ = os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), 0o600)
	secretFile := filepath.Join(dir, "secret")
	_ = os.WriteFile(secretFile, append(testHMAC, '\n'), 0o600)
	for _, tc := range []struct {
		name string
		auth AuthConfig
		perm []PermissionRule
		want string
	}{
		{"nobody can connect", AuthConfig{}, nil, "auth: nobody can connect: set auth.anonymous: true for open access, or configure auth.jwt"},
		{"alg none", AuthConfig{JWT: JWTConfig{HMACSecret: string(testHMAC), Algorithms: []string{"none"}}}, nil, `"none" is never accepted`},
		{"alg without its key", AuthConfig{JWT: JWTConfig{HMACSecret: string(testHMAC), Algorithms: []string{"RS256"}}}, nil, "RS256: no rsa key is configured for it"},
		{"short secret", AuthConfig{JWT: JWTConfig{HMACSecret: "short"}}, nil, "the HMAC secret has 5 bytes: want at least 32"},
		{"secret twice", AuthConfig{JWT: JWTConfig{HMACSecret: string(testHMAC), HMACSecretFile: secretFile}}, nil, "set hmac_secret or hmac_secret_file, not both"},
		{"private key", AuthConfig{JWT: JWTConfig{PublicKeyFiles: []string{priv}}}, nil, "give the server the public key only"},
		{"bad jwks url", AuthConfig{JWT: JWTConfig{JWKSURL: "ftp://x"}}, nil, "want an https:// (or http://) URL"},
		{"bad who", AuthConfig{Anonymous: true}, []PermissionRule{{Match: "a.*", Join: []string{"everyone"}}}, `permissions[0].join: "everyone": want anyone`},
		{"empty who", AuthConfig{Anonymous: true}, []PermissionRule{{Match: "a.*", Publish: []string{}}}, "permissions[0].publish: an empty list: write [nobody]"},
		{"sys rule", AuthConfig{Anonymous: true}, []PermissionRule{{Match: "$sys.*", Join: []string{"anyone"}}}, "the $sys.* rooms are admin-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Listen: "127.0.0.1:0", Auth: tc.auth, Permissions: tc.perm})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
	// A secret file is trimmed and works.
	if _, err := New(Config{Listen: "127.0.0.1:0", Auth: AuthConfig{JWT: JWTConfig{HMACSecretFile: secretFile}}}); err != nil {
		t.Fatal(err)
	}
}

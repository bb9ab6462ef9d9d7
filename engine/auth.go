package engine

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"streamd/protocol"
)

// Authentication (docs/security.md). A connection is authenticated by a
// JWT, given at the upgrade (the query parameter AuthConfig.QueryParam or
// an `Authorization: Bearer` header) or in its first message,
// {"type":"auth","token":T}. The same message on an open connection
// refreshes the token (the subject must stay the same). When the token's
// exp passes, the connection is closed with CloseTokenExpired. Without a
// token, a connection is anonymous when AuthConfig.Anonymous allows it;
// otherwise it must send an auth message within AuthConfig.Timeout, and
// every other message is answered `unauthenticated` until then.
//
// Tokens are verified on the connection's event loop, with keys held in
// memory (PEM files read at New, a JWKS fetched and refreshed in the
// background): verification never waits on the network.

// Close codes of the authentication closes (RFC 6455 leaves 4000–4999
// to applications).
const (
	// CloseUnauthenticated: no valid token (a bad signature, algorithm,
	// issuer, audience, a token not yet valid, a malformed one), no auth
	// message within AuthConfig.Timeout, or no token where anonymous
	// access is off.
	CloseUnauthenticated uint16 = 4001
	// CloseTokenExpired: the token's exp passed (at the upgrade, in the
	// first auth message, or on an open connection that did not refresh
	// it in time).
	CloseTokenExpired uint16 = 4002
	// CloseForbidden: a refresh carried another subject than the
	// connection's.
	CloseForbidden uint16 = 4003
)

// Error codes of authentication.
const (
	CodeUnauthenticated = "unauthenticated"
	CodeTokenExpired    = "token_expired"
)

// maxTokenLen bounds a token: a longer one is refused before parsing.
const maxTokenLen = 8 << 10

// AuthConfig is the `auth:` block: who may connect and how tokens are
// checked (docs/security.md).
type AuthConfig struct {
	// Anonymous lets connections without a token in, with the
	// permissions rules give `anyone` and `anonymous`. Default false:
	// then a JWT key (JWT) is required, or nobody could connect.
	Anonymous bool `yaml:"anonymous" json:"anonymous"`
	// JWT says how tokens are verified.
	JWT JWTConfig `yaml:"jwt" json:"jwt"`
	// QueryParam is the query parameter of the upgrade URL that may
	// carry the token (ws://host/ws?token=…). Default "token".
	QueryParam string `yaml:"query_param" json:"query_param"`
	// Timeout is how long a connection that must authenticate has to
	// send its auth message before it is closed (CloseUnauthenticated).
	// Default 5s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// JWTConfig is the `auth.jwt:` block. At least one key source (an HMAC
// secret, a public key file, a JWKS URL) makes tokens usable.
type JWTConfig struct {
	// HMACSecret is the shared secret of HS256/HS384/HS512 tokens (at
	// least 32 bytes). Prefer HMACSecretFile: a config file is often
	// readable by more people than a secret should be.
	HMACSecret string `yaml:"hmac_secret" json:"-"`
	// HMACSecretFile is a file holding the secret (surrounding
	// whitespace is trimmed).
	HMACSecretFile string `yaml:"hmac_secret_file" json:"hmac_secret_file"`
	// PublicKeyFiles are PEM files of RSA, ECDSA or Ed25519 public keys
	// (PUBLIC KEY or RSA PUBLIC KEY blocks, or certificates); a file may
	// hold several.
	PublicKeyFiles []string `yaml:"public_key_files" json:"public_key_files"`
	// JWKSURL is a JSON Web Key Set to fetch the public keys from, by
	// `kid`. It is fetched at Start, every JWKSRefresh, and (at most
	// every 10 s) when a token names a kid it does not hold.
	JWKSURL string `yaml:"jwks_url" json:"jwks_url"`
	// JWKSRefresh is the JWKS refresh period. Default 5m.
	JWKSRefresh time.Duration `yaml:"jwks_refresh" json:"jwks_refresh"`
	// JWKSTimeout bounds one JWKS fetch. Default 5s.
	JWKSTimeout time.Duration `yaml:"jwks_timeout" json:"jwks_timeout"`
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Audience, when set, must be one of the token's aud.
	Audience string `yaml:"audience" json:"audience"`
	// Leeway is the clock skew allowed on exp and nbf (also when an open
	// connection's token expires). Default 0.
	Leeway time.Duration `yaml:"leeway" json:"leeway"`
	// Algorithms are the accepted `alg`s. Default: those of the keys
	// configured (HS256/384/512 with a secret; RS*, PS* with RSA keys;
	// ES* with ECDSA keys; EdDSA with Ed25519 keys; all of the public-key
	// ones with a JWKS). `none` is never accepted, and a key only ever
	// verifies the algorithms of its own kind.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
}

// algFamily is the kind of key an algorithm needs.
var algFamily = map[string]string{
	"HS256": "hmac", "HS384": "hmac", "HS512": "hmac",
	"RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
	"PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
	"ES256": "ecdsa", "ES384": "ecdsa", "ES512": "ecdsa",
	"EdDSA": "ed25519",
}

// configured reports whether any key source is set.
func (j *JWTConfig) configured() bool {
	return j.HMACSecret != "" || j.HMACSecretFile != "" || len(j.PublicKeyFiles) > 0 || j.JWKSURL != ""
}

func (a *AuthConfig) ensureDefaults() {
	if a.QueryParam == "" {
		a.QueryParam = "token"
	}
	if a.Timeout == 0 {
		a.Timeout = 5 * time.Second
	}
	if a.JWT.JWKSURL != "" {
		if a.JWT.JWKSRefresh == 0 {
			a.JWT.JWKSRefresh = 5 * time.Minute
		}
		if a.JWT.JWKSTimeout == 0 {
			a.JWT.JWKSTimeout = 5 * time.Second
		}
	}
}

// keySet is the key material of a JWTConfig.
type keySet struct {
	hmac  [][]byte
	rsa   []*rsa.PublicKey
	ecdsa []*ecdsa.PublicKey
	ed    []ed25519.PublicKey
}

// loadKeys reads the secret and the PEM files.
func (j *JWTConfig) loadKeys() (keySet, error) {
	var ks keySet
	var errs []error
	secret := j.HMACSecret
	if j.HMACSecretFile != "" {
		if secret != "" {
			errs = append(errs, errors.New("engine: auth.jwt: set hmac_secret or hmac_secret_file, not both"))
		}
		b, err := os.ReadFile(j.HMACSecretFile) // #nosec G304 -- the operator's configured secret file
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.hmac_secret_file: %w", err))
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret != "" || j.HMACSecretFile != "" {
		if len(secret) < 32 {
			errs = append(errs, fmt.Errorf("engine: auth.jwt: the HMAC secret has %d bytes: want at least 32 (RFC 7518 §3.2)", len(secret)))
		} else {
			ks.hmac = append(ks.hmac, []byte(secret))
		}
	}
	for i, f := range j.PublicKeyFiles {
		b, err := os.ReadFile(f) // #nosec G304 -- the operator's configured key file
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.public_key_files[%d]: %w", i, err))
			continue
		}
		n := 0
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			key, err := parsePublicKey(blk)
			if err != nil {
				errs = append(errs, fmt.Errorf("engine: auth.jwt.public_key_files[%d] %s: %w", i, f, err))
				continue
			}
			if key == nil {
				continue // not a public key block (a certificate chain's extras, say)
			}
			n++
			ks.add(key)
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.public_key_files[%d] %s: no PEM public key (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE blocks)", i, f))
		}
	}
	return ks, errors.Join(errs...)
}

func (ks *keySet) add(key any) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		ks.rsa = append(ks.rsa, k)
	case *ecdsa.PublicKey:
		ks.ecdsa = append(ks.ecdsa, k)
	case ed25519.PublicKey:
		ks.ed = append(ks.ed, k)
	}
}

// parsePublicKey parses one PEM block: a public key, an RSA public key or
// a certificate. Other blocks give nil; private keys are refused.
func parsePublicKey(b *pem.Block) (any, error) {
	var key any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			key = c.PublicKey
		}
	default:
		if strings.Contains(b.Type, "PRIVATE") {
			return nil, fmt.Errorf("a %s block: give the server the public key only", b.Type)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits: want at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key: want RSA, ECDSA or Ed25519", key)
}

// families lists the key kinds a config provides.
func (j *JWTConfig) families(ks keySet) map[string]bool {
	f := map[string]bool{}
	f["hmac"] = len(ks.hmac) > 0
	f["rsa"] = len(ks.rsa) > 0 || j.JWKSURL != ""
	f["ecdsa"] = len(ks.ecdsa) > 0 || j.JWKSURL != ""
	f["ed25519"] = len(ks.ed) > 0 || j.JWKSURL != ""
	return f
}

// algorithms returns the accepted algs: the configured ones or those of
// the keys.
func (j *JWTConfig) algorithms(ks keySet) []string {
	if len(j.Algorithms) > 0 {
		return j.Algorithms
	}
	fam := j.families(ks)
	var out []string
	for _, alg := range []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		if fam[algFamily[alg]] {
			out = append(out, alg)
		}
	}
	return out
}

// validateAuth checks the auth block and the permission rules.
func (c *Config) validateAuth() []error {
	var errs []error
	a := &c.Auth
	j := &a.JWT
	if !a.Anonymous && !j.configured() {
		errs = append(errs, errors.New("engine: auth: nobody can connect: set auth.anonymous: true for open access, or configure auth.jwt (hmac_secret_file, public_key_files or jwks_url) so clients can authenticate (docs/security.md)"))
	}
	ks, err := j.loadKeys()
	if err != nil {
		errs = append(errs, err)
	}
	fam := j.families(ks)
	for i, alg := range j.Algorithms {
		f, ok := algFamily[alg]
		switch {
		case strings.EqualFold(alg, "none"):
			errs = append(errs, fmt.Errorf("engine: auth.jwt.algorithms[%d]: \"none\" is never accepted (unsigned tokens)", i))
		case !ok:
			errs = append(errs, fmt.Errorf("engine: auth.jwt.algorithms[%d] %q: want one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", i, alg))
		case !fam[f] && err == nil:
			errs = append(errs, fmt.Errorf("engine: auth.jwt.algorithms[%d] %s: no %s key is configured for it", i, alg, f))
		}
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.jwks_url %q: want an https:// (or http://) URL", j.JWKSURL))
		}
		if j.JWKSRefresh < 10*time.Second {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.jwks_refresh = %v: want ≥ 10s", j.JWKSRefresh))
		}
		if j.JWKSTimeout <= 0 {
			errs = append(errs, fmt.Errorf("engine: auth.jwt.jwks_timeout = %v: want > 0", j.JWKSTimeout))
		}
	}
	if j.Leeway < 0 || j.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("engine: auth.jwt.leeway = %v: want 0..5m", j.Leeway))
	}
	if a.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("engine: auth.timeout = %v: want > 0", a.Timeout))
	}
	if strings.ContainsAny(a.QueryParam, "&=?# ") {
		errs = append(errs, fmt.Errorf("engine: auth.query_param %q: want a plain parameter name", a.QueryParam))
	}
	errs = append(errs, validatePermissions(c.Permissions)...)
	return errs
}

// identity is who a connection is. Shared read-only once built: a
// refresh replaces the pointer.
type identity struct {
	authed bool   // a verified token (false: anonymous)
	sub    string // the token's subject
	admin  bool
	roles  []string
	rooms  *roomClaims // nil: the token limits no rooms
	exp    int64       // Unix seconds; 0: none
}

// anonymous is the identity of every anonymous connection.
var anonymous = &identity{}

// roomClaims is the `rooms` claim: the room globs a token may join,
// publish to and read the history of (history absent: as join).
type roomClaims struct {
	Join    []string `json:"join"`
	Publish []string `json:"publish"`
	History []string `json:"history"`
}

// tokenClaims are the claims streamd reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Admin bool        `json:"admin"`
	Roles []string    `json:"roles"`
	Rooms *roomClaims `json:"rooms"`
}

// authFailure is why a token was refused: the close code, the counter
// reason and the text the client gets.
type authFailure struct {
	close  uint16
	code   string // error code: unauthenticated or token_expired
	reason int    // authReason*
	msg    string
}

// Reasons of streamd_auth_failures_total.
const (
	authInvalid    = iota // a token that does not verify
	authExpired           // exp passed, at auth or on an open connection
	authTimeout           // no auth message within auth.timeout
	authMissing           // no token where anonymous access is off, or a message before auth
	authSubChanged        // a refresh with another subject
	nAuthReasons
)

var authReasons = [nAuthReasons]string{"invalid", "expired", "timeout", "missing", "subject_changed"}

// ticketKid is the key id of the tickets the engine mints itself
// (Engine.AdminTicket): HS256 with a random per-process key that never
// leaves memory. Operators' tokens must not use this kid.
const ticketKid = "streamd-ticket"

var ticketKey = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("engine: no randomness for the ticket key: " + err.Error())
	}
	return b
})

// authenticator verifies tokens. Safe from any goroutine.
type authenticator struct {
	cfg     *AuthConfig
	keys    keySet
	allowed map[string]bool // accepted algs (tickets aside)
	parser  *jwt.Parser
	jwks    *jwksCache // nil without a JWKS URL
}

func newAuthenticator(cfg *AuthConfig, logf func(msg string, args ...any)) (*authenticator, error) {
	ks, err := cfg.JWT.loadKeys()
	if err != nil {
		return nil, err
	}
	a := &authenticator{cfg: cfg, keys: ks, allowed: map[string]bool{}}
	methods := []string{"HS256"} // tickets
	for _, alg := range cfg.JWT.algorithms(ks) {
		a.allowed[alg] = true
		if alg != "HS256" {
			methods = append(methods, alg)
		}
	}
	// iat is not checked (an issuer's clock a second ahead would refuse
	// fresh tokens); nbf is the claim for "not before".
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.JWT.Leeway)}
	if cfg.JWT.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.JWT.Issuer))
	}
	if cfg.JWT.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.JWT.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	if cfg.JWT.JWKSURL != "" {
		a.jwks = newJWKSCache(cfg.JWT.JWKSURL, cfg.JWT.JWKSTimeout, logf)
	}
	return a, nil
}

// errNoKey is what keyFunc says when nothing can verify a token.
var errNoKey = errors.New("no key of this token's kind is configured")

// keyFunc returns the keys that may verify t: only keys of the kind its
// alg needs, so an HMAC secret never verifies an RS/ES token and a public
// key is never used as an HMAC secret.
func (a *authenticator) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	if kid == ticketKid {
		if alg != "HS256" {
			return nil, errors.New("a streamd ticket must be HS256")
		}
		return ticketKey(), nil
	}
	if !a.allowed[alg] {
		return nil, fmt.Errorf("algorithm %s is not accepted here", alg)
	}
	var keys []jwt.VerificationKey
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		for _, k := range a.keys.hmac {
			keys = append(keys, k)
		}
		return keySetOrErr(keys)
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		for _, k := range a.keys.rsa {
			keys = append(keys, k)
		}
	case *jwt.SigningMethodECDSA:
		for _, k := range a.keys.ecdsa {
			keys = append(keys, k)
		}
	case *jwt.SigningMethodEd25519:
		for _, k := range a.keys.ed {
			keys = append(keys, k)
		}
	default:
		return nil, fmt.Errorf("algorithm %s is not accepted here", alg)
	}
	if a.jwks != nil {
		keys = a.jwks.keysFor(kid, alg, keys)
	}
	return keySetOrErr(keys)
}

func keySetOrErr(keys []jwt.VerificationKey) (any, error) {
	if len(keys) == 0 {
		return nil, errNoKey
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// verify checks a token and returns the identity it proves.
func (a *authenticator) verify(token []byte) (*identity, *authFailure) {
	if len(token) > maxTokenLen {
		return nil, &authFailure{CloseUnauthenticated, CodeUnauthenticated, authInvalid, "token: over 8 KiB"}
	}
	var cl tokenClaims
	_, err := a.parser.ParseWithClaims(string(token), &cl, a.keyFunc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, &authFailure{CloseTokenExpired, CodeTokenExpired, authExpired, "token: expired"}
		}
		return nil, &authFailure{CloseUnauthenticated, CodeUnauthenticated, authInvalid, "token: " + shortReason(err)}
	}
	id := &identity{authed: true, sub: cl.Subject, admin: cl.Admin, roles: cl.Roles, rooms: cl.Rooms}
	if cl.ExpiresAt != nil {
		id.exp = cl.ExpiresAt.Unix()
	}
	if err := protocol.ValidRoomName([]byte(id.sub), MaxUserID); err != nil {
		return nil, &authFailure{CloseUnauthenticated, CodeUnauthenticated, authInvalid, "token: sub: empty, over 256 bytes, or with control characters"}
	}
	if r := id.rooms; r != nil {
		for _, list := range [][]string{r.Join, r.Publish, r.History} {
			for _, p := range list {
				if _, err := path.Match(p, ""); err != nil {
					return nil, &authFailure{CloseUnauthenticated, CodeUnauthenticated, authInvalid, "token: rooms: a bad pattern"}
				}
			}
		}
	}
	return id, nil
}

// shortReason is a client-facing reason for a refused token: the jwt
// library's sentinel, not its wrapped details (which may quote keys'
// errors).
func shortReason(err error) string {
	for _, s := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenRequiredClaimMissing} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if errors.Is(err, errNoKey) || errors.Is(err, jwt.ErrTokenUnverifiable) || errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		if strings.Contains(err.Error(), "signing method") || strings.Contains(err.Error(), "not accepted") {
			return "algorithm not accepted"
		}
		return "signature is invalid"
	}
	return "invalid"
}

// AdminTicket returns a token that authenticates one connection as an
// admin named sub for ttl (at most 24 h): what the admin server gives the
// dashboard so it may join the $sys.* rooms. It is signed with a random
// key the process keeps in memory, so it is valid only for engines of
// this process. Safe from any goroutine.
func (e *Engine) AdminTicket(sub string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > 24*time.Hour {
		return "", fmt.Errorf("engine: AdminTicket ttl %v: want (0, 24h]", ttl)
	}
	now := time.Now()
	cl := tokenClaims{Admin: true, RegisteredClaims: jwt.RegisteredClaims{
		Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer: e.cfg.Auth.JWT.Issuer,
	}}
	if aud := e.cfg.Auth.JWT.Audience; aud != "" {
		cl.Audience = jwt.ClaimStrings{aud}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, cl)
	t.Header["kid"] = ticketKid
	return t.SignedString(ticketKey())
}

// tokenFromUpgrade finds a token in the upgrade: the query parameter,
// then an `Authorization: Bearer` header when the transport exposes the
// upgrade's headers. "" when there is none.
func (ls *loopState) tokenFromUpgrade(c interface{ Path() string }) string {
	if t := queryParam(c.Path(), ls.e.cfg.Auth.QueryParam); t != "" {
		return t
	}
	if h, ok := c.(interface{ Header(name string) []byte }); ok {
		if tok, ok := protocol.BearerToken(string(h.Header("Authorization"))); ok {
			return tok
		}
	}
	return ""
}

// deadline is when an identity stops being valid (Unix ns, leeway
// included), 0 for never.
func (e *Engine) deadline(id *identity) int64 {
	if id.exp == 0 {
		return 0
	}
	return id.exp*1e9 + int64(e.cfg.Auth.JWT.Leeway)
}

// ---- on the loop ------------------------------------------------------------

// openSession decides who a new connection is and greets it: an identity
// from the upgrade's token, anonymous, or pending until an auth message.
// It reports false when the connection was refused (and is closing).
func (ls *loopState) openSession(s *session) bool {
	e := ls.e
	tok := ls.tokenFromUpgrade(s.conn)
	switch {
	case tok != "":
		id, f := e.auth.verify([]byte(tok))
		if f != nil {
			ls.refuse(s, nil, f)
			return false
		}
		ls.setIdentity(s, id)
	case e.cfg.Auth.Anonymous:
		s.who = anonymous
	default:
		s.who = nil
		ls.arm(s, ls.np.Now()+int64(e.cfg.Auth.Timeout))
	}
	return true
}

// setIdentity makes id the session's identity and arms its expiry.
func (ls *loopState) setIdentity(s *session, id *identity) {
	s.who = id
	s.pubRoom = nil // publish rights are decided again
	ls.arm(s, ls.e.deadline(id))
}

// refuse answers a failed authentication with an error, counts it and
// closes the connection with the failure's close code.
func (ls *loopState) refuse(s *session, id []byte, f *authFailure) {
	ls.countAuthFailure(f.reason)
	ls.replyErrorCode(s, id, f.code, f.msg)
	ls.closeAuth(s, f.close, f.msg)
}

func (ls *loopState) countAuthFailure(reason int) {
	ls.metrics.authFail[reason].Inc()
}

// replyErrorCode sends an error with code and message, counted.
func (ls *loopState) replyErrorCode(s *session, id []byte, code, msg string) {
	ls.replyError(s, id, &protocol.Error{Code: code, Message: msg})
}

// closeAuth closes s for an authentication reason; nothing it sends
// later is read (netpoll hands no frame on after Close).
func (ls *loopState) closeAuth(s *session, code uint16, reason string) {
	ls.arm(s, 0)
	s.who = nil
	if len(reason) > 120 {
		reason = reason[:120]
	}
	s.conn.Close(code, reason)
}

// authMessage handles {"type":"auth","token":T}: the first
// authentication of a pending (or anonymous) connection, or a refresh.
func (ls *loopState) authMessage(s *session, env *protocol.Envelope) {
	pending := s.who == nil
	var id *identity
	var f *authFailure
	if len(env.Token) == 0 {
		f = &authFailure{CloseUnauthenticated, CodeUnauthenticated, authMissing, `auth needs a "token"`}
	} else {
		id, f = ls.e.auth.verify(env.Token)
	}
	if f != nil {
		if pending {
			ls.refuse(s, env.ID, f)
			return
		}
		// A failed refresh changes nothing: the current token stays
		// valid until its own exp.
		ls.countAuthFailure(f.reason)
		ls.replyErrorCode(s, env.ID, f.code, f.msg)
		return
	}
	if !pending && s.who.authed && s.who.sub != id.sub {
		ls.refuse(s, env.ID, &authFailure{CloseForbidden, CodeForbidden, authSubChanged, "a refresh must carry the connection's subject"})
		return
	}
	ls.setIdentity(s, id)
	sub := []byte(id.sub)
	b := ls.np.BeginFrame(64 + len(env.ID) + len(sub))
	if s.enc == encJSON {
		b = protocol.AppendAuthenticatedJSON(b, env.ID, sub, id.exp, id.admin)
	} else {
		b = protocol.AppendAuthenticatedMsgpack(b, env.ID, sub, id.exp, id.admin)
	}
	s.write(ls.finish(s, b))
}

// errAuthFirst answers every message but auth before authentication.
const errAuthFirst = `authenticate first: send {"type":"auth","token":…}`

// ---- deadlines: auth timeouts and token expiry ------------------------------
//
// A loop keeps the sessions with a deadline (pending ones: the auth
// timeout; authenticated ones: the token's exp) in a list, and the
// earliest deadline in an atomic. The engine's auth ticker (every
// authTick) wakes a loop only when that deadline has passed; the loop
// then sweeps its list once. No timer per connection, nothing per message.

// authTick is the period of the expiry check: a token is closed at most
// about this long after its exp (plus leeway).
const authTick = 200 * time.Millisecond

// arm sets (deadline > 0) or clears (0) s's deadline. Loop-only.
func (ls *loopState) arm(s *session, deadline int64) {
	s.deadline = deadline
	if deadline == 0 {
		if i := s.timedIdx - 1; i >= 0 {
			last := len(ls.timed) - 1
			moved := ls.timed[last]
			ls.timed[i] = moved
			moved.timedIdx = i + 1
			ls.timed[last] = nil
			ls.timed = ls.timed[:last]
			s.timedIdx = 0
		}
		return
	}
	if s.timedIdx == 0 {
		ls.timed = append(ls.timed, s)
		s.timedIdx = int32(len(ls.timed))
	}
	if next := ls.nextDeadline.Load(); next == 0 || deadline < next {
		ls.nextDeadline.Store(deadline)
	}
}

// sweepDeadlines closes the sessions whose deadline passed and
// recomputes the loop's earliest deadline. Loop-only (OnWake).
func (ls *loopState) sweepDeadlines() {
	now := time.Now().UnixNano()
	var next int64
	for i := 0; i < len(ls.timed); {
		s := ls.timed[i]
		if s.deadline > now {
			if next == 0 || s.deadline < next {
				next = s.deadline
			}
			i++
			continue
		}
		if s.who == nil {
			ls.refuse(s, nil, &authFailure{CloseUnauthenticated, CodeUnauthenticated, authTimeout, "authentication timeout: no auth message in time"})
		} else {
			ls.refuse(s, nil, &authFailure{CloseTokenExpired, CodeTokenExpired, authExpired, "token expired"})
		}
		// refuse disarmed s: another session now sits at i
	}
	ls.nextDeadline.Store(next)
}

// checkDeadlines runs every authTick on the engine's ticker goroutine:
// it wakes the loops whose earliest deadline has passed.
func (e *Engine) checkDeadlines() {
	now := time.Now().UnixNano()
	for i := range e.loops {
		ls := e.loops[i].Load()
		if ls == nil {
			continue
		}
		if d := ls.nextDeadline.Load(); d != 0 && d <= now && !ls.sweepDue.Load() {
			ls.sweepDue.Store(true)
			ls.np.Wake()
		}
	}
}

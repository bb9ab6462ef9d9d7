package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A JSON Web Key Set (RFC 7517) fetched from auth.jwt.jwks_url: fetched
// at Start, then every jwks_refresh on the engine's own goroutine, and
// again (at most every jwksMinGap) when a token names a kid the set does
// not hold. The set is swapped atomically: tokens are verified against
// the keys in memory and never wait on a fetch. A failed fetch keeps the
// previous keys (and is logged).

// jwksMinGap is the least time between two fetches asked for by unknown
// kids (a flood of made-up kids must not become a flood of fetches), and
// the retry period while no fetch has succeeded. A variable for tests.
var jwksMinGap = 10 * time.Second

// maxJWKSBody bounds a JWKS document.
const maxJWKSBody = 1 << 20

type jwk struct {
	alg string // "" when the JWK names none
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

type jwksCache struct {
	url    string
	client *http.Client
	logf   func(msg string, args ...any)

	keys      atomic.Pointer[map[string][]jwk] // kid → keys ("" for keys without a kid)
	fetchMu   sync.Mutex                       // one fetch at a time
	lastFetch atomic.Int64                     // Unix ns of the last fetch attempt
	fetching  atomic.Bool
}

func newJWKSCache(url string, timeout time.Duration, logf func(string, ...any)) *jwksCache {
	c := &jwksCache{url: url, client: &http.Client{Timeout: timeout}, logf: logf}
	empty := map[string][]jwk{}
	c.keys.Store(&empty)
	return c
}

// keysFor adds to keys the JWKS keys that may verify a token of alg
// naming kid (every key of alg's kind when kid is ""). An unknown kid
// asks for a fetch in the background.
func (c *jwksCache) keysFor(kid, alg string, keys []jwt.VerificationKey) []jwt.VerificationKey {
	m := *c.keys.Load()
	fam := algFamily[alg]
	add := func(list []jwk) {
		for _, k := range list {
			if (k.alg == "" || k.alg == alg) && keyFamily(k.key) == fam {
				keys = append(keys, k.key)
			}
		}
	}
	if kid == "" {
		for _, list := range m {
			add(list)
		}
		return keys
	}
	list, ok := m[kid]
	if !ok {
		c.refreshSoon()
	}
	add(list)
	return keys
}

func keyFamily(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return ""
}

// refreshSoon starts a fetch in the background unless one ran within
// jwksMinGap or one is running.
func (c *jwksCache) refreshSoon() {
	if time.Now().UnixNano()-c.lastFetch.Load() < int64(jwksMinGap) || !c.fetching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.fetching.Store(false)
		if err := c.fetch(context.Background()); err != nil {
			c.logf("jwks refresh for an unknown kid failed; keeping the previous keys", "url", c.url, "err", err)
		}
	}()
}

// fetch downloads and parses the set, and swaps it in.
func (c *jwksCache) fetch(ctx context.Context) error {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	c.lastFetch.Store(time.Now().UnixNano())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxJWKSBody {
		return errors.New("the key set is over 1 MiB")
	}
	m, err := parseJWKS(body)
	if err != nil {
		return err
	}
	c.keys.Store(&m)
	return nil
}

// parseJWKS reads the public signing keys of a JWKS document. Keys for
// encryption, symmetric keys and keys of other kinds are skipped; a set
// with no usable key is an error.
func parseJWKS(b []byte) (map[string][]jwk, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	m := map[string][]jwk{}
	var errs []error
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Alg != "" {
			if _, ok := algFamily[k.Alg]; !ok || algFamily[k.Alg] == "hmac" {
				continue
			}
		}
		var key any
		var err error
		switch k.Kty {
		case "RSA":
			key, err = jwkRSA(k.N, k.E)
		case "EC":
			key, err = jwkEC(k.Crv, k.X, k.Y)
		case "OKP":
			if k.Crv != "Ed25519" {
				continue
			}
			var x []byte
			if x, err = b64(k.X); err == nil && len(x) != ed25519.PublicKeySize {
				err = errors.New("bad Ed25519 key length")
			}
			key = ed25519.PublicKey(x)
		default:
			continue // "oct" (symmetric) keys are never taken from a URL
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k.Kid, err))
			continue
		}
		if k.Alg != "" && algFamily[k.Alg] != keyFamily(key) {
			errs = append(errs, fmt.Errorf("key %q: alg %s does not fit a %s key", k.Kid, k.Alg, k.Kty))
			continue
		}
		m[k.Kid] = append(m[k.Kid], jwk{alg: k.Alg, key: key})
	}
	if len(m) == 0 {
		return nil, errors.Join(append(errs, errors.New("no usable signing key in the set"))...)
	}
	return m, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jwkRSA(n, e string) (*rsa.PublicKey, error) {
	nb, err1 := b64(n)
	eb, err2 := b64(e)
	if err := errors.Join(err1, err2); err != nil || len(nb) == 0 || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad RSA n or e")
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits: want at least 2048", k.N.BitLen())
	}
	return k, nil
}

func jwkEC(crv, x, y string) (*ecdsa.PublicKey, error) {
	var c elliptic.Curve
	switch crv {
	case "P-256":
		c = elliptic.P256()
	case "P-384":
		c = elliptic.P384()
	case "P-521":
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("curve %q: want P-256, P-384 or P-521", crv)
	}
	xb, err1 := b64(x)
	yb, err2 := b64(y)
	size := (c.Params().BitSize + 7) / 8
	if errors.Join(err1, err2) != nil || len(xb) != size || len(yb) != size {
		return nil, errors.New("bad EC x or y")
	}
	// ecdh checks the point is on the curve.
	raw := append(append([]byte{4}, xb...), yb...)
	k, err := ecdsa.ParseUncompressedPublicKey(c, raw)
	if err != nil {
		return nil, fmt.Errorf("bad EC point: %w", err)
	}
	return k, nil
}

// run keeps the set fresh until stop closes: the first fetch at once,
// then every refresh (every jwksMinGap while no fetch has succeeded).
func (c *jwksCache) run(stop <-chan struct{}, refresh time.Duration, done func()) {
	defer done()
	ok := false
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := c.fetch(ctx)
		cancel()
		switch {
		case err != nil && !ok:
			c.logf("jwks fetch failed: no token signed by its keys verifies until one succeeds", "url", c.url, "err", err)
		case err != nil:
			c.logf("jwks refresh failed; keeping the previous keys", "url", c.url, "err", err)
		default:
			ok = true
		}
		wait := refresh
		if !ok {
			wait = jwksMinGap
		}
		select {
		case <-stop:
			return
		case <-time.After(wait):
		}
	}
}

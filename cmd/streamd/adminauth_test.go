package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"streamd/engine"
	"streamd/engine/enginetest"
)

const testAdminToken = "s3cret-admin-token-0123456789abcdef"

// adminWithToken serves the admin mux of eng behind the token guard.
func adminWithToken(t *testing.T, eng *engine.Engine, openMetrics bool) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &adminServer{}
	srv := httptest.NewServer(newAdminGuard(testAdminToken, openMetrics).wrap(a.mux(eng, logger, func() error { return nil })))
	t.Cleanup(srv.Close)
	return srv
}

func adminDo(t *testing.T, method, url, auth string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestAdminTokenEveryEndpoint: with a token, every admin endpoint but
// /healthz and the browser client answers 401 without it (or with a wrong one) and serves with
// it; open_metrics leaves /metrics open.
func TestAdminTokenEveryEndpoint(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{Rooms: []engine.RoomPolicy{{Match: "p.*", Presence: true}}})
	srv := adminWithToken(t, eng, false)
	endpoints := []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/metrics"}, {"GET", "/stats"}, {"GET", "/stats/metrics"}, {"GET", "/stats/pipelines"},
		{"GET", "/state?pipeline=x&key=k"}, {"GET", "/backup"}, {"GET", "/presence?room=p.a"}, {"GET", "/presence/stats?room=p.a"},
		{"POST", "/ingest?stream=s"}, {"POST", "/reload"}, {"GET", "/dashboard/"}, {"GET", "/dashboard/config.json"},
		{"GET", "/dashboard/app.js"}, {"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/cmdline"}, {"POST", "/erase?subject=ann"},
	}
	for _, ep := range endpoints {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token-wrong", "Basic " + testAdminToken, "Bearer " + testAdminToken + "x"} {
			code, body, h := adminDo(t, ep.method, srv.URL+ep.path, auth, strings.NewReader("{}"))
			if code != http.StatusUnauthorized || !strings.Contains(body, "Authorization: Bearer <admin token>") || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: %d %q, want 401", ep.method, ep.path, auth, code, body)
			}
		}
		code, body, _ := adminDo(t, ep.method, srv.URL+ep.path, "Bearer "+testAdminToken, strings.NewReader("{}"))
		if code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401 %q", ep.method, ep.path, body)
		}
	}
	if code, body, _ := adminDo(t, "GET", srv.URL+"/healthz", "", nil); code != 200 || body != "ok\n" {
		t.Errorf("/healthz without a token: %d %q, want 200", code, body)
	}
	// The browser client is public: web pages load it.
	for _, p := range []string{"/client.js", "/client.d.ts"} {
		if code, body, _ := adminDo(t, "GET", srv.URL+p, "", nil); code != 200 || !strings.Contains(body, "StreamdClient") {
			t.Errorf("%s without a token: %d, want 200 and the client", p, code)
		}
	}
	open := adminWithToken(t, eng, true)
	if code, _, _ := adminDo(t, "GET", open.URL+"/metrics", "", nil); code != 200 {
		t.Errorf("/metrics with open_metrics: %d, want 200", code)
	}
	if code, _, _ := adminDo(t, "GET", open.URL+"/stats", "", nil); code != 401 {
		t.Errorf("/stats with open_metrics: %d, want 401", code)
	}
}

// TestAdminDashboardLogin: /dashboard/?token=T sets a cookie and
// redirects to the page without the token; the cookie then serves GETs
// (the page, config.json with its WebSocket ticket) but never a POST; a
// wrong token in the query gets 401.
func TestAdminDashboardLogin(t *testing.T) {
	eng := enginetest.Start(t, engine.Config{})
	srv := adminWithToken(t, eng, false)
	if code, _, _ := adminDo(t, "GET", srv.URL+"/dashboard/?token=wrong-token-wrong-token-wrong", "", nil); code != 401 {
		t.Fatalf("wrong login token: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	var redirects []string
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		redirects = append(redirects, r.URL.RequestURI())
		return nil
	}}
	resp, err := c.Get(srv.URL + "/dashboard/?token=" + testAdminToken + "&x=1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "app.js") || len(redirects) != 1 || redirects[0] != "/dashboard/?x=1" {
		t.Fatalf("login: %d, redirects %v", resp.StatusCode, redirects)
	}
	cookies := jar.Cookies(resp.Request.URL)
	if len(cookies) != 1 || cookies[0].Name != adminCookie || strings.Contains(cookies[0].Value, testAdminToken) {
		t.Fatalf("cookies %v", cookies)
	}
	resp, err = c.Get(srv.URL + "/dashboard/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg dashboardConfig
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || cfg.Token == "" || cfg.TokenTTLS != 600 {
		t.Fatalf("config.json with the cookie: %d %+v %v", resp.StatusCode, cfg, err)
	}
	// The ticket makes a WebSocket connection an admin: $sys.metrics.
	ws, _, err := websocket.DefaultDialer.Dial(enginetest.URL(eng), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, _ = ws.ReadMessage() // welcome
	_ = ws.WriteJSON(map[string]any{"type": "auth", "token": cfg.Token})
	_ = ws.WriteJSON(map[string]any{"type": "join", "room": "$sys.metrics"})
	for _, want := range []string{`"type":"authenticated"`, `"type":"joined"`} {
		_, b, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("after the ticket: %s %v, want %s", b, err, want)
		}
	}
	// The cookie never authorizes a POST.
	resp, err = c.Post(srv.URL+"/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("POST /reload with the cookie: %d, want 401", resp.StatusCode)
	}
}

// TestAdminAddressNeedsToken: an admin address other machines can reach
// is refused without a token, unless allow_open; a token (file or
// STREAMD_ADMIN_TOKEN) makes it acceptable; bad tokens are refused.
func TestAdminAddressNeedsToken(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := "short"
	env := testAdminToken
	for _, tc := range []struct {
		name, file string
		env        *string
		want       string // "" = accepted
	}{
		{"loopback, no token", "admin: 127.0.0.1:9090\n", nil, ""},
		{"localhost, no token", "admin: localhost:9090\n", nil, ""},
		{"every interface, no token", "admin: 0.0.0.0:9090\n", nil, `admin "0.0.0.0:9090": other machines can reach this address and the admin API has no token: set admin_auth.token_file`},
		{"empty host, no token", "admin: \":9090\"\n", nil, "other machines can reach this address"},
		{"allow_open", "admin: 0.0.0.0:9090\nadmin_auth: {allow_open: true}\n", nil, ""},
		{"token file", "admin: 0.0.0.0:9090\nadmin_auth: {token_file: " + tokFile + "}\n", nil, ""},
		{"environment", "admin: 0.0.0.0:9090\n", &env, ""},
		{"short token", "admin_auth: {token: abc}\n", nil, "admin_auth.token: the admin token has 3 characters: want at least 16"},
		{"short environment token", "", &short, "STREAMD_ADMIN_TOKEN: the admin token has 5 characters"},
		{"token and file", "admin_auth: {token: " + testAdminToken + ", token_file: " + tokFile + "}\n", nil, "set token or token_file, not both"},
		{"missing file", "admin_auth: {token_file: /nonexistent/admin.token}\n", nil, "admin_auth.token_file: open /nonexistent/admin.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := parseConfig("a.yaml", []byte("auth: {anonymous: true}\n"+tc.file))
			if err != nil {
				t.Fatal(err)
			}
			s := resolve(fc, overrides{adminToken: tc.env}, overrides{})
			err = s.check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("check: %v\nwant %q", err, tc.want)
			}
			if tc.want == "" && (tc.env != nil || strings.Contains(tc.file, "token_file")) && s.AdminToken != testAdminToken {
				t.Fatalf("token %q", s.AdminToken)
			}
		})
	}
}

// TestServeRefusesOpenAuth: `serve` with a config that lets nobody in
// stops with the message that says what to set.
func TestServeRefusesOpenAuth(t *testing.T) {
	p := writeFile(t, "noauth.yaml", "rooms: []\n")
	code, _, errOut := runCLI(t, "validate", p)
	if code != exitFail || !strings.Contains(errOut, "auth: nobody can connect: set auth.anonymous: true for open access, or configure auth.jwt") {
		t.Fatalf("validate: %d %q", code, errOut)
	}
}

// TestSecurityConfigYAML: the auth, permissions and admin_auth blocks
// load from YAML with their documented names; an empty who-list is
// refused (it would be ambiguous), an absent one is not.
func TestSecurityConfigYAML(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
auth:
  anonymous: false
  query_param: access_token
  timeout: 2s
  jwt:
    hmac_secret_file: ` + secret + `
    issuer: https://issuer.example
    audience: streamd
    leeway: 30s
    algorithms: [HS256]
permissions:
  - match: "staff.*"
    join: [authenticated]
    publish: ["role:staff"]
admin_auth:
  token: ` + testAdminToken + `
  open_metrics: true
`
	fc, err := parseConfig("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := resolve(fc, overrides{}, overrides{})
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	a := s.Engine.Auth
	if a.Anonymous || a.QueryParam != "access_token" || a.Timeout != 2*time.Second || a.JWT.HMACSecretFile != secret ||
		a.JWT.Issuer != "https://issuer.example" || a.JWT.Audience != "streamd" || a.JWT.Leeway != 30*time.Second || len(a.JWT.Algorithms) != 1 {
		t.Fatalf("auth %+v", a)
	}
	if p := s.Engine.Permissions; len(p) != 1 || p[0].Match != "staff.*" || p[0].History != nil || len(p[0].Publish) != 1 {
		t.Fatalf("permissions %+v", p)
	}
	if s.AdminToken != testAdminToken || !s.AdminAuth.OpenMetrics {
		t.Fatalf("admin %q %+v", s.AdminToken, s.AdminAuth)
	}
	fc, err = parseConfig("e.yaml", []byte("auth: {anonymous: true}\npermissions: [{match: a, join: []}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s = resolve(fc, overrides{}, overrides{})
	if err := s.check(); err == nil || !strings.Contains(err.Error(), "permissions[0].join: an empty list") {
		t.Fatalf("empty join list: %v", err)
	}
}

package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"streamd/engine"
)

// defaultYAML is the demo config used when serve gets no --config.
//
//go:embed default.yaml
var defaultYAML []byte

// defaultConfigName names the embedded config in logs and errors.
const defaultConfigName = "(embedded default.yaml)"

// Built-in defaults of the keys this command owns (DESIGN.md,
// "Command-line contract"). The engine's own keys default in
// engine.Config.EnsureDefaults.
const (
	defaultListen = "127.0.0.1:8080"
	defaultAdmin  = "127.0.0.1:9090"
	defaultData   = "./data"
)

// Environment variables that override the config file (flags override them).
const (
	envListen = "STREAMD_LISTEN"
	envAdmin  = "STREAMD_ADMIN"
	envData   = "STREAMD_DATA"
	envMode   = "STREAMD_MODE"
)

// fileConfig is the YAML config file (DESIGN.md, "Config shape"). Every key
// is optional. Unknown keys are an error, reported with their line.
type fileConfig struct {
	// Admin is the admin HTTP address; "" turns the admin server off.
	// Absent: 127.0.0.1:9090.
	Admin *string `yaml:"admin"`
	// Data is the state directory; "" keeps state in memory. Absent:
	// ./data. Opened only when a room is durable or a pipeline keeps state.
	Data *string `yaml:"data"`
	// AdminAuth protects the admin API with its own token
	// (docs/security.md).
	AdminAuth adminAuthConfig `yaml:"admin_auth"`
	// Engine holds listen, mode, rooms and every engine tunable, with the
	// YAML names of engine.Config (listen, path, mode, loops, workers,
	// ring_size, …, rooms, pipelines).
	Engine engine.Config `yaml:",inline"`
}

// parseConfig decodes one YAML config strictly: an unknown key, a value of
// the wrong kind or a bad duration is an error of the form
// "NAME:LINE:COL: message" followed by the offending source lines.
func parseConfig(name string, src []byte) (*fileConfig, error) {
	fc := new(fileConfig)
	if len(bytes.TrimSpace(src)) == 0 {
		return fc, nil // an empty file is a config with every default
	}
	if err := unmarshalYAML(src, fc); err != nil {
		var pe *yamlPanic
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return nil, formatYAMLError(name, src, err)
	}
	// Pipelines are compiled here, where the source is at hand, so their
	// errors point at the line and the field.
	if err := engine.CheckPipelines(fc.Engine.Pipelines); err != nil {
		var errs []error
		for _, e := range splitErrorValues(err) {
			errs = append(errs, formatYAMLError(name, src, e))
		}
		return nil, errors.Join(errs...)
	}
	return fc, nil
}

// yamlPanic is a panic of the YAML library turned into an error.
type yamlPanic struct{ v any }

func (p *yamlPanic) Error() string {
	return fmt.Sprintf("the YAML parser failed on this file (%v): check its syntax near the keys you changed last", p.v)
}

// unmarshalYAML decodes strictly and turns a panic of goccy/go-yaml
// (v1.19.2 dereferences nil on some malformed input, found by
// FuzzParseConfig) into an error: a bad config file must never crash
// validate or serve.
func unmarshalYAML(src []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &yamlPanic{r}
		}
	}()
	return yaml.UnmarshalWithOptions(src, v, yaml.Strict())
}

// locateError finds the top-level key whose value go-yaml failed on when
// its error carries no position (a bad duration such as "25x" is reported
// by time.ParseDuration alone): it decodes each top-level entry on its own
// and returns the key of the first that fails.
func locateError(src []byte) (kv *ast.MappingValueNode) {
	defer func() {
		if recover() != nil { // see unmarshalYAML
			kv = nil
		}
	}()
	f, err := parser.ParseBytes(src, 0)
	if err != nil || len(f.Docs) == 0 {
		return nil
	}
	m, ok := f.Docs[0].Body.(ast.MapNode)
	if !ok {
		return nil
	}
	for it := m.MapRange(); it.Next(); {
		kv := it.KeyValue()
		if yaml.NodeToValue(kv, new(fileConfig), yaml.Strict()) != nil {
			return kv
		}
	}
	return nil
}

// formatYAMLError turns a go-yaml error into "NAME:LINE:COL: message" plus
// the source excerpt go-yaml prints under it.
func formatYAMLError(name string, src []byte, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		kv := locateError(src)
		if kv == nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		msg := kv.Key.String() + ": " + err.Error()
		if strings.Contains(msg, "duration") {
			msg += ` (want a Go duration such as "25s" or "1m30s")`
		}
		ye = &yaml.SyntaxError{Message: msg, Token: kv.Value.GetToken()}
	}
	msg := ye.GetMessage()
	var te *yaml.TypeError
	if errors.As(ye, &te) {
		msg = fmt.Sprintf("want %s, got %s", kindName(te.DstType), kindName(te.SrcType))
		if key := keyOf(ye.GetToken()); key != "" {
			msg = key + ": " + msg
		}
	}
	pos := ye.GetToken().Position
	out := fmt.Sprintf("%s:%d:%d: %s", name, pos.Line, pos.Column, msg)
	full := ye.FormatError(false, true) // "[L:C] message\n<source excerpt>"
	if i := strings.IndexByte(full, '\n'); i >= 0 {
		out += "\n" + strings.TrimRight(full[i+1:], "\n")
	}
	return errors.New(out)
}

// keyOf returns the mapping key a value token belongs to, or "".
func keyOf(tok *token.Token) string {
	if p := tok.Prev; p != nil && p.Type == token.MappingValueType && p.Prev != nil {
		return p.Prev.Value
	}
	return ""
}

// kindName names a Go type the way a config author thinks of it.
func kindName(t reflect.Type) string {
	if t == nil {
		return "null"
	}
	if t == reflect.TypeFor[time.Duration]() {
		return `a duration such as "25s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// loadConfig reads the config at path, or the embedded default when path
// is "". It returns the name to report it by.
func loadConfig(path string) (*fileConfig, string, error) {
	if path == "" {
		fc, err := parseConfig(defaultConfigName, defaultYAML)
		return fc, defaultConfigName, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	fc, err := parseConfig(path, src)
	return fc, path, err
}

// overrides is one layer above the file: the environment or the flags. A
// nil field is not set in that layer.
type overrides struct {
	listen, admin, data, mode *string
	adminToken                *string // STREAMD_ADMIN_TOKEN (environment only)
}

// envOverrides reads the STREAMD_* variables through lookup (os.LookupEnv).
// STREAMD_ADMIN="" turns the admin server off and STREAMD_DATA="" keeps
// state in memory; an empty STREAMD_LISTEN or STREAMD_MODE counts as unset.
func envOverrides(lookup func(string) (string, bool)) overrides {
	var o overrides
	get := func(key string, emptyIsUnset bool) *string {
		v, ok := lookup(key)
		if !ok || (emptyIsUnset && v == "") {
			return nil
		}
		return &v
	}
	o.listen = get(envListen, true)
	o.admin = get(envAdmin, false)
	o.data = get(envData, false)
	o.mode = get(envMode, true)
	o.adminToken = get(envAdminToken, true)
	return o
}

// settings is the resolved configuration serve runs with.
type settings struct {
	// Engine is passed to engine.New; Listen and Mode are resolved here,
	// the rest comes from the file (the engine fills its own defaults).
	Engine engine.Config
	// Admin is the admin HTTP address; "" means no admin server.
	Admin string
	// Data is the state directory; "" means in memory.
	Data string
	// AdminAuth is the file's admin_auth block; AdminToken the token in
	// force (from STREAMD_ADMIN_TOKEN or the block), set by check.
	AdminAuth  adminAuthConfig
	AdminToken string
	envToken   *string
}

// resolve merges the layers: flags > env > file > built-in defaults. For
// listen and mode an empty value means "not set here"; for admin and data
// an empty value is a choice (admin off, data in memory).
func resolve(fc *fileConfig, env, flags overrides) settings {
	if fc == nil {
		fc = new(fileConfig)
	}
	s := settings{Engine: fc.Engine, Admin: defaultAdmin, Data: defaultData, AdminAuth: fc.AdminAuth}
	s.Engine.Rooms = append([]engine.RoomPolicy(nil), fc.Engine.Rooms...)
	if s.Engine.Listen == "" {
		s.Engine.Listen = defaultListen
	}
	if fc.Admin != nil {
		s.Admin = *fc.Admin
	}
	if fc.Data != nil {
		s.Data = *fc.Data
	}
	for _, o := range []overrides{env, flags} {
		if o.listen != nil && *o.listen != "" {
			s.Engine.Listen = *o.listen
		}
		if o.mode != nil && *o.mode != "" {
			s.Engine.Mode = *o.mode
		}
		if o.admin != nil {
			s.Admin = *o.admin
		}
		if o.data != nil {
			s.Data = *o.data
		}
		if o.adminToken != nil {
			s.envToken = o.adminToken
		}
	}
	return s
}

// check reports every setting that cannot work: the engine's own
// Validate (on a copy with defaults filled) and the addresses.
func (s *settings) check() error {
	var errs []error
	cfg := s.Engine
	cfg.Pipelines = nil // compiled by parseConfig, with positions
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := checkAddr(cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %v", cfg.Listen, err))
	}
	if s.Admin != "" {
		if err := checkAddr(s.Admin); err != nil {
			errs = append(errs, fmt.Errorf("admin %q: %v (use \"\" to turn the admin server off)", s.Admin, err))
		}
	}
	tok, err := resolveAdminToken(s.AdminAuth, s.envToken)
	if err != nil {
		errs = append(errs, err)
	}
	s.AdminToken = tok
	if err == nil && s.Admin != "" && tok == "" && !s.AdminAuth.AllowOpen && !loopbackAddr(s.Admin) {
		errs = append(errs, fmt.Errorf("admin %q: other machines can reach this address and the admin API has no token: set admin_auth.token_file (or %s), or admin_auth.allow_open: true behind a trusted network (docs/security.md)", s.Admin, envAdminToken))
	}
	return errors.Join(errs...)
}

// splitErrorValues flattens an errors.Join tree.
func splitErrorValues(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrorValues(e)...)
		}
		return out
	}
	return []error{err}
}

// checkAddr checks that addr is HOST:PORT (HOST may be empty: every
// interface) with a numeric port in 0..65535 (0: any free port).
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number in 0..65535", port)
	}
	return nil
}

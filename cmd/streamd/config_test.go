package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"streamd/engine"
)

// mapEnv is a lookupEnv backed by a map.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// TestPrecedence checks flag > env > file > default for every key that has
// more than one layer, through the same parsers serve uses.
func TestPrecedence(t *testing.T) {
	type want struct{ listen, admin, data, mode string }
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		want  want
	}{
		{
			name: "defaults",
			want: want{defaultListen, defaultAdmin, defaultData, ""},
		},
		{
			name: "file over default",
			file: "listen: 10.0.0.1:1\nadmin: 10.0.0.1:2\ndata: /var/f\nmode: inline\n",
			want: want{"10.0.0.1:1", "10.0.0.1:2", "/var/f", "inline"},
		},
		{
			name: "env over file",
			file: "listen: 10.0.0.1:1\nadmin: 10.0.0.1:2\ndata: /var/f\nmode: inline\n",
			env:  map[string]string{envListen: "10.0.0.2:1", envAdmin: "10.0.0.2:2", envData: "/var/e", envMode: "rings"},
			want: want{"10.0.0.2:1", "10.0.0.2:2", "/var/e", "rings"},
		},
		{
			name:  "flag over env over file",
			file:  "listen: 10.0.0.1:1\nadmin: 10.0.0.1:2\ndata: /var/f\n",
			env:   map[string]string{envListen: "10.0.0.2:1", envAdmin: "10.0.0.2:2", envData: "/var/e"},
			flags: []string{"--listen", "10.0.0.3:1", "--admin", "10.0.0.3:2", "--data", "/var/x"},
			want:  want{"10.0.0.3:1", "10.0.0.3:2", "/var/x", ""},
		},
		{
			name:  "flag over default, env unset",
			flags: []string{"-listen=127.0.0.1:0"},
			want:  want{"127.0.0.1:0", defaultAdmin, defaultData, ""},
		},
		{
			name: "empty file values: admin off, data in memory",
			file: "admin: \"\"\ndata: \"\"\n",
			want: want{defaultListen, "", "", ""},
		},
		{
			name: "null file values mean unset",
			file: "admin:\ndata:\nlisten:\n",
			want: want{defaultListen, defaultAdmin, defaultData, ""},
		},
		{
			name: "empty env: admin off, data in memory, listen and mode unset",
			file: "listen: 10.0.0.1:1\nmode: inline\n",
			env:  map[string]string{envListen: "", envAdmin: "", envData: "", envMode: ""},
			want: want{"10.0.0.1:1", "", "", "inline"},
		},
		{
			name:  "flag --admin \"\" turns off what env sets",
			env:   map[string]string{envAdmin: "10.0.0.2:2"},
			flags: []string{"--admin", ""},
			want:  want{defaultListen, "", defaultData, ""},
		},
		{
			name:  "--in-memory over env and file",
			file:  "data: /var/f\n",
			env:   map[string]string{envData: "/var/e"},
			flags: []string{"--in-memory"},
			want:  want{defaultListen, defaultAdmin, "", ""},
		},
		{
			name:  "--data \"\" is in memory",
			flags: []string{"--data="},
			want:  want{defaultListen, defaultAdmin, "", ""},
		},
		{
			name:  "flags not given leave env in place",
			env:   map[string]string{envListen: "10.0.0.2:1"},
			flags: []string{"--log-level", "debug"},
			want:  want{"10.0.0.2:1", defaultAdmin, defaultData, ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc, err := parseConfig("test.yaml", []byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			f, err := parseServeFlags(tt.flags, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			s := resolve(fc, envOverrides(mapEnv(tt.env)), f.overrides())
			got := want{s.Engine.Listen, s.Admin, s.Data, s.Engine.Mode}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestResolveKeepsFileTunables checks that the engine keys of the file
// reach engine.Config untouched by the override layers.
func TestResolveKeepsFileTunables(t *testing.T) {
	fc, err := parseConfig("t.yaml", []byte(`
auth: {anonymous: true}
path: /stream
loops: 3
ring_size: 1024
max_connections: 10
heartbeat_interval: 10s
idle_timeout: 1m30s
disable_compression: true
rooms:
  - {match: "a.*", history: 5, durable: true, presence: true}
pipelines:
  - {name: p, input: {stream: s}, nodes: [{name: f, op: filter, if: "true"}], output: {reply: true}}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := resolve(fc, envOverrides(mapEnv(map[string]string{envListen: "127.0.0.1:0"})), overrides{})
	e := s.Engine
	if e.Path != "/stream" || e.Loops != 3 || e.RingSize != 1024 || e.MaxConnections != 10 ||
		e.HeartbeatInterval != 10*time.Second || e.IdleTimeout != 90*time.Second || !e.DisableCompression {
		t.Errorf("engine config = %+v", e)
	}
	if want := (engine.RoomPolicy{Match: "a.*", History: 5, Durable: true, Presence: true}); len(e.Rooms) != 1 || e.Rooms[0] != want {
		t.Errorf("rooms = %+v, want [%+v]", e.Rooms, want)
	}
	if len(e.Pipelines) != 1 || e.Pipelines[0].Nodes[0].If != "true" {
		t.Errorf("pipelines = %+v, want 1", e.Pipelines)
	}
	if err := s.check(); err != nil {
		t.Errorf("check: %v", err)
	}
}

// TestStrictYAMLErrors checks that a bad file is refused with an error
// naming the file, line and key.
func TestStrictYAMLErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown top-level key", "listen: 127.0.0.1:1\nlisen: x\n", []string{"c.yaml:2:1:", `unknown field "lisen"`}},
		{"unknown room key", "rooms:\n  - match: a\n    histroy: 5\n", []string{"c.yaml:3:5:", `unknown field "histroy"`}},
		{"wrong type", "rooms: []\nloops: many\n", []string{"c.yaml:2:8:", "loops: want an integer, got a string"}},
		{"duration without unit", "heartbeat_interval: 5\n", []string{"c.yaml:1:21:", "heartbeat_interval", "duration"}},
		{"bad duration", "\nidle_timeout: 25x\n", []string{"c.yaml:2:15:", "idle_timeout", `"25x"`, "want a Go duration"}},
		{"bool", "disable_pin: maybe\n", []string{"c.yaml:1:14:", "disable_pin: want true or false"}},
		{"syntax", "listen: [\n", []string{"c.yaml:1:"}},
		{"not a mapping", "- a\n- b\n", []string{"c.yaml:1:1:", "mapping"}},
		{"rooms not a list", "rooms: 5\n", []string{"c.yaml:1:8:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("c.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestEmbeddedDefault(t *testing.T) {
	fc, err := parseConfig(defaultConfigName, defaultYAML)
	if err != nil {
		t.Fatal(err)
	}
	s := resolve(fc, overrides{}, overrides{})
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	var matches []string
	for _, r := range s.Engine.Rooms {
		matches = append(matches, r.Match)
	}
	if got := strings.Join(matches, " "); got != "chat.* market_analysis *" {
		t.Errorf("room policies = %q", got)
	}
	if s.Engine.Listen != defaultListen || s.Admin != defaultAdmin || s.Data != defaultData {
		t.Errorf("embedded default changes an address: %+v", s)
	}
}

// runCLI runs one command line in process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e, mapEnv(nil))
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateCommand(t *testing.T) {
	t.Run("embedded default", func(t *testing.T) {
		p := writeFile(t, "default.yaml", string(defaultYAML))
		code, out, errOut := runCLI(t, "validate", p)
		if code != 0 || out != "ok\n" {
			t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("pipeline errors point at the line", func(t *testing.T) {
		p := writeFile(t, "p.yaml", "rooms: []\npipelines:\n  - name: a\n    input: {stream: s}\n    nodes:\n      - {name: f, op: filter, if: \"data.x >\"}\n    output: {room: r}\n")
		code, out, errOut := runCLI(t, "validate", p)
		if code != exitFail || out != "" || !strings.Contains(errOut, "p.yaml:6:") || !strings.Contains(errOut, `node "f".if: expression "data.x >"`) {
			t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	bad := []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "rooms: []\nfoo: 1\n", []string{"bad.yaml:2:1:", `unknown field "foo"`}},
		{"engine validate", "mode: fast\nring_size: 1\nrooms:\n  - history: 3\n", []string{
			`mode "fast"`, "ring_size = 1", "rooms[0].match is empty"}},
		{"addresses", "listen: nowhere\nadmin: \"h:99999\"\n", []string{`listen "nowhere"`, `admin "h:99999"`}},
		{"idle below heartbeat", "heartbeat_interval: 30s\nidle_timeout: 10s\n", []string{"idle_timeout"}},
		{"pipeline not a mapping", "pipelines: [scoring]\n", []string{"bad.yaml:1:13:", "mapping is expected"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "bad.yaml", tt.src)
			code, out, errOut := runCLI(t, "validate", p)
			if code != exitFail || out != "" {
				t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q\ndoes not contain %q", errOut, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := runCLI(t, "validate", filepath.Join(t.TempDir(), "nope.yaml"))
		if code != exitFail || !strings.Contains(errOut, "nope.yaml") {
			t.Fatalf("code %d, stderr %q", code, errOut)
		}
	})
	t.Run("no file", func(t *testing.T) {
		if code, _, errOut := runCLI(t, "validate"); code != exitUsage || !strings.Contains(errOut, "usage") {
			t.Fatalf("code %d, stderr %q", code, errOut)
		}
	})
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		wantOut    string
		wantStderr string
	}{
		{nil, exitUsage, "", "Usage:"},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"help"}, exitOK, "streamd serve", ""},
		{[]string{"--help"}, exitOK, "streamd validate FILE", ""},
		{[]string{"version"}, exitOK, "streamd dev go1.", ""},
		{[]string{"version", "x"}, exitUsage, "", "unexpected argument"},
		{[]string{"serve", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"serve", "-h"}, exitOK, "", "-in-memory"},
		{[]string{"serve", "extra.yaml"}, exitUsage, "", "did you mean --config extra.yaml"},
		{[]string{"serve", "--in-memory", "--data", "/x"}, exitUsage, "", "contradict"},
		{[]string{"serve", "--log-level", "loud"}, exitUsage, "", "--log-level"},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, "", "--log-format"},
		{[]string{"serve", "--config", "/nonexistent/streamd.yaml"}, exitFail, "", "/nonexistent/streamd.yaml"},
		{[]string{"serve", "--listen", "bad-address"}, exitFail, "", `listen "bad-address"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantStderr)
			}
		})
	}
}

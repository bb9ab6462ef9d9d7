package main

import (
	"strings"
	"testing"
)

// FuzzParseConfig: whatever the bytes, loading a config file never panics
// and either succeeds or names the file in its error (corpus in
// testdata/fuzz/FuzzParseConfig; the seeds are the embedded default and
// small configs with pipelines, alerts and rooms).
func FuzzParseConfig(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("rooms: [{match: \"d.*\", durable: true, log_max_count: 10}]\n"))
	f.Add([]byte("pipelines:\n  - {name: p, input: {stream: s}, nodes: [{name: a, op: filter, if: \"data.x > 1\"}], output: {room: r}}\n"))
	f.Add([]byte("alerts:\n  - {name: a, metric: latency.e2e.p99, op: \">\", threshold: 10, for: 5s}\n"))
	f.Add([]byte("heartbeat_interval: 1s\nidle_timeout: 500ms\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 8192 {
			return
		}
		_, err := parseConfig("fuzz.yaml", src)
		if err != nil && !strings.Contains(err.Error(), "fuzz.yaml") && !strings.Contains(err.Error(), "pipeline") &&
			!strings.Contains(err.Error(), "engine:") && !strings.Contains(err.Error(), "operators:") {
			t.Fatalf("an error that does not say where: %v", err)
		}
	})
}

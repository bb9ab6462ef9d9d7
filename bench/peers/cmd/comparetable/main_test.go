package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	dir := t.TempDir()
	put := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("streamd.echo_1k.1.json", `{"scenario":"echo","conns":1000,"rate":100000,"duration_s":10,"throughput_per_s":100000,"p99_ms":2,"server_peak_rss_kib":2048}`)
	put("streamd.echo_1k.2.json", `{"scenario":"echo","conns":1000,"rate":100000,"duration_s":10,"throughput_per_s":99000,"p99_ms":4}`)
	put("streamd.echo_1k.3.json", `{"scenario":"echo","conns":1000,"rate":100000,"duration_s":10,"throughput_per_s":98000,"p99_ms":3}`)
	put("gorilla.echo_1k.1.json", `{"scenario":"echo","conns":1000,"rate":100000,"duration_s":10,"throughput_per_s":49500,"p99_ms":12,"gen_limited":true}`)
	put("notes.json", `{}`) // not SERVER.SCENARIO.REPEAT: ignored

	runs, servers, scenarios, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !scenarios["echo_1k"] || len(scenarios) != 1 {
		t.Fatalf("loaded %v", runs)
	}
	var sb strings.Builder
	write(&sb, dir, runs, order("streamd,gorilla", servers), order("echo_1k", scenarios), "streamd")
	out := sb.String()
	for _, want := range []string{
		"| streamd | 3 | 99000 | 0.00 | 3.00 |", // medians
		"| gorilla | 1 | 49500 |",
		"| 1/1 |",
		"| echo_1k | 2.00× | 0.25× |", // 99000/49500, 3/12
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"streamd/engine"
)

// yamlBlocks returns the ```yaml blocks of a markdown file with their
// first line numbers.
func yamlBlocks(t *testing.T, path string) (blocks []string, lines []int) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	in, n, cur := false, 0, ""
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case !in && strings.TrimSpace(l) == "```yaml":
			in, cur = true, ""
			lines = append(lines, n+1)
		case in && strings.TrimSpace(l) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur += l + "\n"
		}
	}
	return blocks, lines
}

// TestDocsConfigsLoadAndRun: every YAML example in the README and the
// docs is a config this binary accepts, and the engine starts and stops
// on it (addresses moved to free loopback ports). docs/pipelines.md's
// examples are also run event by event in pipeline/docs_test.go.
func TestDocsConfigsLoadAndRun(t *testing.T) {
	total := 0
	paths := []string{"../../README.md", "../../docs/configuration.md", "../../docs/pipelines.md", "../../docs/presence.md", "../../docs/observability.md", "../../docs/durability.md", "../../docs/security.md", "../../docs/backpressure.md"}
	abs := map[string]string{}
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		abs[p] = a
	}
	t.Chdir(t.TempDir()) // the examples' log sinks write relative paths
	for _, path := range paths {
		blocks, lines := yamlBlocks(t, abs[path])
		for i, b := range blocks {
			total++
			name := path[len("../../"):] + ":" + strconv.Itoa(lines[i])
			fc, err := parseConfig(name, []byte(b))
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			free, off := "127.0.0.1:0", ""
			s := resolve(fc, overrides{}, overrides{listen: &free, admin: &off, data: &off})
			if err := s.check(); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			cfg := s.Engine
			e, err := engine.New(cfg)
			if err == nil {
				err = e.Start()
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := e.Close(ctx); err != nil {
				t.Errorf("%s: close: %v", name, err)
			}
			cancel()
		}
	}
	if total < 20 {
		t.Fatalf("only %d yaml blocks found", total)
	}
}

// TestDefaultDemoPipeline: `make run` shows a newcomer the market demo:
// within a few seconds room market_analysis gets per-symbol windows.
func TestDefaultDemoPipeline(t *testing.T) {
	fc, err := parseConfig(defaultConfigName, defaultYAML)
	if err != nil {
		t.Fatal(err)
	}
	free, off := "127.0.0.1:0", ""
	s := resolve(fc, overrides{}, overrides{listen: &free, admin: &off, data: &off})
	e, err := engine.New(s.Engine)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	}()
	got := make(chan string, 64)
	stop, err := e.Subscribe("market_analysis", func(m *engine.Message) {
		select {
		case got <- string(m.Data()):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case d := <-got:
		for _, want := range []string{`"key":"`, `"avg":`, `"min":`, `"max":`, `"count":`, `"start":`, `"end":`} {
			if !strings.Contains(d, want) {
				t.Fatalf("demo message %s lacks %s", d, want)
			}
		}
		t.Logf("market_analysis: %s", d)
	case <-time.After(8 * time.Second):
		t.Fatal("no demo message in market_analysis within 8s")
	}
}

package main

import (
	"bufio"
	"context"
	"os"
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
	for _, path := range []string{"../../README.md", "../../docs/configuration.md", "../../docs/pipelines.md"} {
		blocks, lines := yamlBlocks(t, path)
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

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesABadDataDirectory: with a durable room, a data
// directory the store cannot trust (a foreign one, a newer format) stops
// serve at start with a message saying what to do; nothing is served on
// an empty state by mistake.
func TestServeRefusesABadDataDirectory(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("auth: {anonymous: true}\nrooms: [{match: \"d.*\", durable: true}]\npipelines: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("not a streamd store"), 0o644); err != nil {
		t.Fatal(err)
	}
	newer := t.TempDir()
	if err := os.WriteFile(filepath.Join(newer, "STREAMD-FORMAT"), []byte("streamd-state-format 999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"foreign": foreign, "newer": newer} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pr, pw := io.Pipe()
			w := watchLog(pr)
			code := run(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--admin", "", "--data", dir}, io.Discard, pw, mapEnv(nil))
			pw.Close()
			<-w.done
			log := w.logSoFar()
			if code != exitFail || !strings.Contains(log, "durable rooms need the state store") {
				t.Fatalf("exit %d, log:\n%s", code, log)
			}
			if strings.Contains(log, "msg=listening") {
				t.Fatalf("it listened on a bad data directory:\n%s", log)
			}
		})
	}
}

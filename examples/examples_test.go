package examples

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"streamd/engine"
	"streamd/engine/enginetest"
)

// syncBuf is a bytes.Buffer safe for a writer and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAgentAndConsumer: the agent streams an answer into a room; the
// consumer, joined there, prints it whole once done, and acts on a
// confident analysis_update but not on an unsure one.
func TestAgentAndConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the examples")
	}
	e := enginetest.Start(t, engine.Config{})
	url := enginetest.URL(e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := t.TempDir()
	for _, dir := range []string{"./agent", "./consumer"} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, dir).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", dir, err, out)
		}
	}
	out := &syncBuf{}
	cons := exec.CommandContext(ctx, filepath.Join(bin, "consumer"), "-url", url)
	cons.Stdout, cons.Stderr = out, out
	if err := cons.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cons.Process.Kill(); _ = cons.Wait() }()
	waitOut(t, out, "joined agents.answers, analysis")
	if b, err := exec.CommandContext(ctx, filepath.Join(bin, "agent"), "-url", url, "-every", "1ms").CombinedOutput(); err != nil {
		t.Fatalf("agent: %v\n%s", err, b)
	}
	waitOut(t, out, "(Rayleigh scattering), so the sky looks blue.")
	for _, u := range []string{`{"type":"analysis_update","symbol":"ACME","signal":"buy","confidence":0.93}`,
		`{"type":"analysis_update","symbol":"INIT","signal":"sell","confidence":0.41}`} {
		if _, err := e.Publish("analysis", []byte(u)); err != nil {
			t.Fatal(err)
		}
	}
	waitOut(t, out, "ACT on ACME: buy (confidence 0.93)")
	waitOut(t, out, "ignore INIT: confidence 0.41")
	if strings.Contains(out.String(), "ACT on INIT") {
		t.Fatalf("acted on an unsure update:\n%s", out)
	}
}

func waitOut(t *testing.T, out *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q; output:\n%s", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Package chromiumtest is what the headless-Chromium tests share (e2e/
// and the dashboard's in cmd/streamd): the allocator options for Debian's
// chromium in a sandbox-less CI container, and a log collector for
// failure reports. Test helpers only; no production code imports it.
package chromiumtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"
)

// Path is where scripts/test-deps.sh installs Debian's chromium.
const Path = "/usr/bin/chromium"

// NewAllocator starts an allocator for headless Chromium at path with
// profile as its user-data directory (not a t.TempDir: Chromium's helpers
// may still write there after it exits), its output going to out, plus
// any extra options. Cancel it before removing profile: it waits for
// Chromium's exit.
func NewAllocator(ctx context.Context, path, profile string, out io.Writer, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.CombinedOutput(out),
	}, extra...)
	return chromedp.NewExecAllocator(ctx, opts...)
}

// Log collects output for a failure report, up to 64 KiB. Safe from any
// goroutine.
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write keeps p while the log is under 64 KiB.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

// Printf appends one line (chromedp's WithLogf and WithErrorf take it).
func (l *Log) Printf(format string, args ...any) {
	fmt.Fprintf(l, format+"\n", args...)
}

// String returns the log without empty lines and without the noise of a
// sandbox that has no D-Bus.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line != "" && !strings.Contains(line, "dbus/") && !strings.Contains(line, "unexpected operator") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

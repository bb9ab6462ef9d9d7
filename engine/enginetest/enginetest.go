// Package enginetest starts real engines for tests of other packages: on a
// free loopback port, closed when the test ends.
package enginetest

import (
	"context"
	"testing"
	"time"

	"streamd/engine"
)

// Start builds and starts an engine from cfg (Listen defaults to
// 127.0.0.1:0) and closes it, with a 5 s grace, when tb ends; a failing
// Close fails the test. A cfg that configures no authentication at all
// (no JWT key) gets anonymous access: tests of other packages exercise
// their own features, not the engine's auth (engine/auth_test.go does).
func Start(tb testing.TB, cfg engine.Config) *engine.Engine {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if j := cfg.Auth.JWT; j.HMACSecret == "" && j.HMACSecretFile == "" && len(j.PublicKeyFiles) == 0 && j.JWKSURL == "" {
		cfg.Auth.Anonymous = true
	}
	e, err := engine.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			tb.Errorf("engine Close: %v", err)
		}
	})
	return e
}

// URL returns the WebSocket URL of a started engine.
func URL(e *engine.Engine) string { return "ws://" + e.Addr().String() + "/ws" }

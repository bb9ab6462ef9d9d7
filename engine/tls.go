package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"streamd/netpoll"
)

// TLS minimum versions (TLSConfig.MinVersion).
const (
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"
)

// TLSConfig is the `tls` block: a second listener whose clients connect
// with wss://. TLS is terminated in front of the event loops (see
// netpoll/tls.go and docs/architecture.md), so a TLS client gets the same
// upgrade, limits and protocol as a plain one. The block is off while
// Listen, CertFile and KeyFile are all empty; setting any of them needs
// all three.
type TLSConfig struct {
	// Listen is the TLS address (HOST:PORT; port 0: any free port,
	// Engine.TLSAddr reports it). It must differ from the plain listen.
	Listen string `yaml:"listen" json:"listen"`
	// CertFile is the PEM certificate chain (the server's certificate
	// first, then intermediates).
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// KeyFile is the PEM private key of the certificate (PKCS #1, PKCS #8
	// or SEC 1), unencrypted.
	KeyFile string `yaml:"key_file" json:"key_file"`
	// MinVersion is "1.2" (default) or "1.3". TLS 1.0 and 1.1 are never
	// offered; TLS 1.2 is limited to ECDHE key exchange with AEAD ciphers.
	MinVersion string `yaml:"min_version" json:"min_version"`
	// ReloadInterval is how often the two files are checked (modification
	// time and size); a change loads the new pair for new handshakes.
	// SIGHUP and POST /reload (streamd serve) reload at once. Default
	// 10s; negative: no polling.
	ReloadInterval time.Duration `yaml:"reload_interval" json:"reload_interval"`
}

// Enabled reports whether the block is set.
func (t *TLSConfig) Enabled() bool {
	return t.Listen != "" || t.CertFile != "" || t.KeyFile != ""
}

func (t *TLSConfig) ensureDefaults() {
	if !t.Enabled() {
		return
	}
	if t.MinVersion == "" {
		t.MinVersion = TLSVersion12
	}
	if t.ReloadInterval == 0 {
		t.ReloadInterval = 10 * time.Second
	}
}

func (t *TLSConfig) minVersion() uint16 {
	if t.MinVersion == TLSVersion13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// validate checks the block, reading the certificate and key: a missing
// or unreadable file, or a key that does not match the certificate,
// refuses the config (streamd validate and serve report it).
func (t *TLSConfig) validate(listen string) []error {
	if !t.Enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("engine: "+format, args...)) }
	if t.Listen == "" {
		bad("tls.listen is empty: set the TLS address (HOST:PORT), or remove the tls block to serve plain ws:// only")
	} else if _, port, err := net.SplitHostPort(t.Listen); err != nil {
		bad("tls.listen %q: want HOST:PORT", t.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("tls.listen %q: port %q: want a number in 0..65535", t.Listen, port)
	} else if t.Listen == listen && n != 0 {
		bad("tls.listen %q is also listen: give TLS its own port", t.Listen)
	}
	switch t.MinVersion {
	case TLSVersion12, TLSVersion13:
	default:
		bad("tls.min_version %q: want \"1.2\" or \"1.3\" (older versions are not offered)", t.MinVersion)
	}
	if t.ReloadInterval > 0 && t.ReloadInterval < 100*time.Millisecond {
		bad("tls.reload_interval = %v: want ≥ 100ms, or negative for no polling", t.ReloadInterval)
	}
	switch {
	case t.CertFile == "":
		bad("tls.cert_file is empty: set it to the PEM certificate chain")
	case t.KeyFile == "":
		bad("tls.key_file is empty: set it to the PEM private key")
	default:
		if _, err := netpoll.ReadKeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, certError(err))
		}
	}
	return errs
}

// certError names the setting behind a netpoll.CertError and says what to do.
func certError(err error) error {
	var ce *netpoll.CertError
	if !errors.As(err, &ce) {
		return fmt.Errorf("engine: tls: %v", err)
	}
	switch ce.File {
	case "cert":
		return fmt.Errorf("engine: tls.cert_file %q: %v (point it at a readable PEM certificate chain)", ce.Path, ce.Err)
	case "key":
		return fmt.Errorf("engine: tls.key_file %q: %v (point it at the certificate's readable PEM private key)", ce.Path, ce.Err)
	}
	return fmt.Errorf("engine: tls.cert_file and tls.key_file (%s): %v (the key must be the certificate's own, unencrypted PEM; check that the two files are not swapped)", ce.Path, ce.Err)
}

// tlsState is the engine's TLS listener state (nil without TLS).
type tlsState struct {
	certs *netpoll.CertFiles
}

// setupTLS loads the certificate and adds the TLS listener to o.
func (e *Engine) setupTLS(o *netpoll.Options) error {
	t := &e.cfg.TLS
	certs, err := netpoll.LoadCertFiles(t.CertFile, t.KeyFile)
	if err != nil {
		return certError(err)
	}
	if err := netpoll.CheckValidity(certs.Leaf(), time.Now()); err != nil {
		e.cfg.Logger.Warn("tls: the certificate is not valid now; clients will refuse it", "cert_file", t.CertFile, "err", err)
	}
	if fi, err := os.Stat(t.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		e.cfg.Logger.Warn("tls: the private key file is readable by other users; chmod 600 it", "key_file", t.KeyFile, "mode", fi.Mode().Perm().String())
	}
	o.TLSAddr = t.Listen
	o.TLSConfig = netpoll.NewTLSConfig(t.minVersion(), certs.GetCertificate)
	e.tls = &tlsState{certs: certs}
	return nil
}

// TLSAddr returns the bound TLS address (after Start; nil without TLS).
func (e *Engine) TLSAddr() net.Addr { return e.srv.TLSAddr() }

// ReloadTLS reads the certificate and key files again and serves the new
// pair to new handshakes; connections already open are not affected. On
// error the previous pair stays in use, and the failure is logged and
// counted (streamd_tls_reloads_total{result="error"}). Without TLS it does
// nothing. Safe from any goroutine.
func (e *Engine) ReloadTLS() error {
	if e.tls == nil {
		return nil
	}
	return e.reportReload(e.tls.certs.Reload(), "reload")
}

// pollTLS reloads when the files changed (every TLSConfig.ReloadInterval).
func (e *Engine) pollTLS() {
	tried, err := e.tls.certs.ReloadIfChanged()
	if tried {
		_ = e.reportReload(err, "files changed")
	}
}

func (e *Engine) reportReload(err error, cause string) error {
	t := &e.cfg.TLS
	if err != nil {
		err = certError(err)
		e.cfg.Logger.Error("tls: certificate reload failed; the previous certificate stays in use", "cause", cause, "err", err)
		return err
	}
	leaf := e.tls.certs.Leaf()
	e.cfg.Logger.Info("tls: certificate reloaded; new handshakes use it", "cause", cause, "cert_file", t.CertFile,
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if verr := netpoll.CheckValidity(leaf, time.Now()); verr != nil {
		e.cfg.Logger.Warn("tls: the reloaded certificate is not valid now; clients will refuse it", "err", verr)
	}
	return nil
}

// TLSStats are the TLS listener's figures.
type TLSStats struct {
	Connections       int64  `json:"connections"`        // TLS connections open now (handshaking or served)
	HandshakeFailures int64  `json:"handshake_failures"` // failed or timed-out TLS handshakes
	Reloads           uint64 `json:"reloads"`            // certificate reloads that succeeded
	ReloadErrors      uint64 `json:"reload_errors"`      // reloads that failed (the old pair was kept)
	NotAfter          int64  `json:"not_after"`          // the current certificate's expiry, Unix seconds
}

// TLSStats returns the TLS figures; ok is false without TLS. Safe from
// any goroutine.
func (e *Engine) TLSStats() (st TLSStats, ok bool) {
	if e.tls == nil {
		return st, false
	}
	ns := e.srv.Stats()
	st.Connections = ns.TLSOpen.Load()
	st.HandshakeFailures = ns.TLSHandshakeFailures.Load()
	st.Reloads, st.ReloadErrors = e.tls.certs.Reloads()
	st.NotAfter = e.tls.certs.Leaf().NotAfter.Unix()
	return st, true
}

// flattenInto adds the tls.* names of MetricsSnapshot.Flatten (nothing
// without TLS); now is the snapshot's time, Unix ms.
func (t *TLSStats) flattenInto(m map[string]float64, now int64) {
	if t == nil {
		return
	}
	m["tls.connections"], m["tls.handshake_failures"] = float64(t.Connections), float64(t.HandshakeFailures)
	m["tls.reloads"], m["tls.reload_errors"] = float64(t.Reloads), float64(t.ReloadErrors)
	m["tls.cert_expires_in_s"] = float64(t.NotAfter) - float64(now)/1e3
}

// TLS listener metrics, reported only with a tls block.
var (
	tlsConns      = prometheus.NewDesc("streamd_tls_connections", "TLS connections open now (handshaking or served).", nil, nil)
	tlsHandshakes = prometheus.NewDesc("streamd_tls_handshake_failures_total", "TLS handshakes that failed or timed out (old versions, weak suites, plain HTTP on the TLS port, silence).", nil, nil)
	tlsReloads    = prometheus.NewDesc("streamd_tls_reloads_total", "Certificate reloads by result: ok, or error (the previous certificate stayed in use).", []string{"result"}, nil)
	tlsNotAfter   = prometheus.NewDesc("streamd_tls_cert_not_after_timestamp_seconds", "Expiry of the certificate being served, Unix seconds.", nil, nil)
	tlsDescList   = []*prometheus.Desc{tlsConns, tlsHandshakes, tlsReloads, tlsNotAfter}
)

// collectTLS reports the TLS metrics (nothing without TLS).
func (e *Engine) collectTLS(ch chan<- prometheus.Metric) {
	ts, ok := e.TLSStats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(tlsConns, prometheus.GaugeValue, float64(ts.Connections))
	ch <- prometheus.MustNewConstMetric(tlsHandshakes, prometheus.CounterValue, float64(ts.HandshakeFailures))
	ch <- prometheus.MustNewConstMetric(tlsReloads, prometheus.CounterValue, float64(ts.Reloads), "ok")
	ch <- prometheus.MustNewConstMetric(tlsReloads, prometheus.CounterValue, float64(ts.ReloadErrors), "error")
	ch <- prometheus.MustNewConstMetric(tlsNotAfter, prometheus.GaugeValue, float64(ts.NotAfter))
}

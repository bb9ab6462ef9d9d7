package netpoll

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tls12Suites are the TLS 1.2 cipher suites NewTLSConfig allows: ECDHE key
// exchange (forward secrecy) with an AEAD cipher only (AES-GCM,
// ChaCha20-Poly1305), for ECDSA and RSA certificates. No CBC, no RSA key
// exchange, no 3DES or RC4. TLS 1.3's suites are all AEAD and not
// configurable in crypto/tls. Go picks the order itself (AES-GCM first
// where the CPU has AES instructions).
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// NewTLSConfig returns the server TLS settings streamd serves wss:// with:
// TLS 1.2 or minVersion (tls.VersionTLS12 or tls.VersionTLS13) and up;
// for TLS 1.2 only the ECDHE + AEAD suites of tls12Suites; key exchange on
// X25519MLKEM768 (TLS 1.3's hybrid post-quantum group), X25519 or P-256;
// ALPN http/1.1 (the WebSocket upgrade); the certificate from getCert on
// every handshake (CertFiles.GetCertificate serves a reloadable one).
// Session tickets stay on (Go rotates their keys), so reconnecting
// clients resume without a full handshake.
func NewTLSConfig(minVersion uint16, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	if minVersion < tls.VersionTLS12 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion:       minVersion,
		CipherSuites:     append([]uint16(nil), tls12Suites...),
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"http/1.1"},
		GetCertificate:   getCert,
	}
}

// CertError is a failure to read a certificate/key pair. File says which
// input is at fault: "cert", "key", or "pair" (both read, but they do not
// belong together or do not parse as a pair).
type CertError struct {
	File string
	Path string
	Err  error
}

func (e *CertError) Error() string {
	switch e.File {
	case "cert":
		return fmt.Sprintf("certificate file %q: %v", e.Path, e.Err)
	case "key":
		return fmt.Sprintf("key file %q: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("certificate and key (%s): %v", e.Path, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// ReadKeyPair reads a PEM certificate chain and its PEM private key and
// checks that they belong together. The error is a *CertError naming the
// file at fault.
func ReadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile) // #nosec G304 -- the operator's configured path
	if err != nil {
		return nil, &CertError{"cert", certFile, err}
	}
	keyPEM, err := os.ReadFile(keyFile) // #nosec G304 -- the operator's configured path
	if err != nil {
		return nil, &CertError{"key", keyFile, err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &CertError{"pair", certFile + ", " + keyFile, err}
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, &CertError{"cert", certFile, err}
		}
	}
	return &pair, nil
}

// fileSig identifies a file's contents cheaply: modification time and size.
type fileSig struct {
	mtime int64
	size  int64
}

func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path) // follows symlinks: a swapped link (Kubernetes secrets) is a change
	if err != nil {
		return fileSig{}, err
	}
	return fileSig{fi.ModTime().UnixNano(), fi.Size()}, nil
}

// CertFiles is a certificate and key read from PEM files and swapped
// atomically on reload: GetCertificate, called on every handshake, reads
// an atomic pointer, so a reload never blocks a handshake, connections
// already established keep the certificate they were set up with, and new
// handshakes get the new one. A reload that fails keeps the previous pair.
// Every method is safe from any goroutine.
type CertFiles struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]

	mu  sync.Mutex // serialises reloads; guards sig
	sig [2]fileSig // the files when last read, successfully or not

	reloads, failures atomic.Uint64
	lastErr           atomic.Pointer[string]
}

// LoadCertFiles reads the pair once; it fails (a *CertError) when either
// file is missing or unreadable or the two do not belong together.
func LoadCertFiles(certFile, keyFile string) (*CertFiles, error) {
	f := &CertFiles{certFile: certFile, keyFile: keyFile}
	f.sig = f.stat()
	pair, err := ReadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f.cur.Store(pair)
	return f, nil
}

func (f *CertFiles) stat() [2]fileSig {
	a, _ := statSig(f.certFile)
	b, _ := statSig(f.keyFile)
	return [2]fileSig{a, b}
}

// GetCertificate returns the current pair (tls.Config.GetCertificate).
func (f *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Leaf returns the current certificate, parsed.
func (f *CertFiles) Leaf() *x509.Certificate { return f.cur.Load().Leaf }

// Reload reads both files now and, if they form a valid pair, serves it
// from the next handshake on. On failure the previous pair stays and the
// failure is counted.
func (f *CertFiles) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloadLocked(f.stat())
}

// ReloadIfChanged reloads when either file's modification time or size
// differs from when it was last read (successfully or not: a broken
// replacement is tried, and counted, once). It reports whether it tried.
func (f *CertFiles) ReloadIfChanged() (tried bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sig := f.stat()
	if sig == f.sig {
		return false, nil
	}
	return true, f.reloadLocked(sig)
}

func (f *CertFiles) reloadLocked(sig [2]fileSig) error {
	f.sig = sig // taken before reading: a write after the stat shows up on the next poll
	pair, err := ReadKeyPair(f.certFile, f.keyFile)
	if err != nil {
		f.failures.Add(1)
		msg := err.Error()
		f.lastErr.Store(&msg)
		return err
	}
	f.cur.Store(pair)
	f.reloads.Add(1)
	return nil
}

// Reloads returns how many reloads succeeded and how many failed.
func (f *CertFiles) Reloads() (ok, failed uint64) { return f.reloads.Load(), f.failures.Load() }

// LastError returns the message of the last failed reload ("" if none).
func (f *CertFiles) LastError() string {
	if p := f.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// CheckValidity reports a certificate that is expired or not yet valid at
// now (a server may still start with it: clients decide).
func CheckValidity(leaf *x509.Certificate, now time.Time) error {
	switch {
	case leaf == nil:
		return errors.New("no certificate")
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

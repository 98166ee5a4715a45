package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Config names the files a Source reads. Flags bind to its fields.
type Config struct {
	// CAFile is a PEM bundle of every CA to trust. During a CA rotation it
	// holds the old and the new CA together.
	CAFile string
	// CertFile and KeyFile are this process's certificate and key, both or
	// neither: a client with neither can only reach a server that allows
	// callers without a certificate (enrollment).
	CertFile, KeyFile string
	// Cluster is the trust domain: the certificate must be of it, and so
	// must every peer.
	Cluster string
}

// DefaultCluster is the cluster name when none is given.
const DefaultCluster = "shoal"

// DefaultConfig returns a Config for cluster "shoal" with no files set.
func DefaultConfig() Config { return Config{Cluster: DefaultCluster} }

// Validate checks the fields without reading the files.
func (c Config) Validate() error {
	switch {
	case c.CAFile == "":
		return errors.New("ca-file: required")
	case c.CertFile == "" && c.KeyFile != "":
		return errors.New("cert-file: required with key-file")
	case c.CertFile != "" && c.KeyFile == "":
		return errors.New("key-file: required with cert-file")
	}
	return CheckCluster(c.Cluster)
}

// Source holds the trusted CAs and this process's certificate as last
// loaded. TLS configs built from it read the current values at each
// handshake, so a Reload takes effect on the next connection without
// touching live ones.
type Source struct {
	cfg Config

	mu    sync.RWMutex
	cur   *loaded
	files [3][]byte // what cur was loaded from, to notice changes
}

type loaded struct {
	pool *x509.CertPool
	cert *tls.Certificate // nil without a certificate
	id   Identity         // zero without a certificate
}

// NewSource validates cfg and loads its files.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Cluster is the trust domain every peer must belong to.
func (s *Source) Cluster() string { return s.cfg.Cluster }

// Identity is this process's identity, the same for the Source's life; ok
// is false without a certificate.
func (s *Source) Identity() (id Identity, ok bool) {
	c := s.current()
	return c.id, c.cert != nil
}

// Certificate is the certificate as last loaded, or nil without one.
func (s *Source) Certificate() *tls.Certificate { return s.current().cert }

// Pool is the trusted CAs as last loaded.
func (s *Source) Pool() *x509.CertPool { return s.current().pool }

func (s *Source) current() *loaded {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// Reload reads the files again. Everything is checked before anything is
// swapped: on error the previous bundle and certificate stay in use. The
// identity may not change (a renewal keeps it): configs were built for
// it, and callers may have checked it against their own name at start.
func (s *Source) Reload() error {
	files, err := s.read()
	if err != nil {
		return err
	}
	return s.load(files)
}

// load swaps in what files hold, if all of it is good.
func (s *Source) load(files [3][]byte) error {
	next, err := s.parse(files)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.cert != nil && next.id != s.cur.id {
		return fmt.Errorf("cert-file (%s): identity changed from %s to %s; restart to change it", s.cfg.CertFile, s.cur.id, next.id)
	}
	s.cur, s.files = next, files
	return nil
}

func (s *Source) read() ([3][]byte, error) {
	var files [3][]byte
	for i, f := range []struct{ field, path string }{{"ca-file", s.cfg.CAFile}, {"cert-file", s.cfg.CertFile}, {"key-file", s.cfg.KeyFile}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return files, fmt.Errorf("%s: %w", f.field, err)
		}
		files[i] = b
	}
	return files, nil
}

func (s *Source) parse(files [3][]byte) (*loaded, error) {
	pool, err := parseBundle(files[0])
	if err != nil {
		return nil, fmt.Errorf("ca-file (%s): %w", s.cfg.CAFile, err)
	}
	l := &loaded{pool: pool}
	if s.cfg.CertFile == "" {
		return l, nil
	}
	cert, err := tls.X509KeyPair(files[1], files[2])
	if err != nil {
		return nil, fmt.Errorf("cert-file (%s), key-file (%s): %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	id, err := ParseIdentity(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("cert-file (%s): %w", s.cfg.CertFile, err)
	}
	if id.Cluster != s.cfg.Cluster {
		return nil, fmt.Errorf("cert-file (%s): %s is of cluster %q, not %q", s.cfg.CertFile, id, id.Cluster, s.cfg.Cluster)
	}
	// A certificate its own bundle does not trust would fail every
	// handshake; refuse it here, where the error names the file.
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("cert-file (%s): %w", s.cfg.CertFile, err)
		}
		inter.AddCert(c)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("cert-file (%s): not trusted by ca-file (%s): %w", s.cfg.CertFile, s.cfg.CAFile, err)
	}
	l.cert, l.id = &cert, id
	return l, nil
}

// parseBundle reads every CERTIFICATE block of a PEM bundle; each must be a CA.
func parseBundle(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q (a CA bundle holds certificates only)", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA", n+1, c.Subject)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// Changed reports whether any file differs from what was last loaded.
func (s *Source) Changed() (bool, error) {
	files, err := s.read()
	if err != nil {
		return false, err
	}
	return s.differs(files), nil
}

// differs reports whether files differ from what was last loaded.
func (s *Source) differs(files [3][]byte) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range files {
		if !bytes.Equal(files[i], s.files[i]) {
			return true
		}
	}
	return false
}

// Watch checks the files every interval and reloads when one changed, until
// ctx ends. It compares contents rather than modification times, which can
// repeat within a clock tick and are kept by some copy tools. report, if not
// nil, is called after each reload attempt with its result; a failed reload
// keeps the previous files in use and is tried again at the next change.
// Watch returns at once if interval is not positive.
func (s *Source) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string // the error last reported, so a lasting one is reported once
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// One read per tick: the contents compared, loaded and, if broken,
		// remembered are the same bytes. Reading again to remember them
		// could pick up a repair written meanwhile (the key renamed into
		// place just after the certificate) and mark it as seen, so it
		// would never be loaded.
		files, err := s.read()
		if err == nil {
			if !s.differs(files) {
				continue
			}
			if err = s.load(files); err != nil {
				// Remember the broken contents so the same error is
				// reported once, not every tick.
				s.mu.Lock()
				s.files = files
				s.mu.Unlock()
			}
		}
		if err != nil && err.Error() == last {
			continue
		}
		last = ""
		if err != nil {
			last = err.Error()
		}
		if report != nil {
			report(err)
		}
	}
}

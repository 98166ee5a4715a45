package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File names under the data directory. CredentialsFile holds the key and
// the chain together so one rename replaces both; point a tlsconf.Config's
// CertFile and KeyFile both at it.
const (
	CredentialsFile = "agent.pem"
	NonceFile       = "nonce"
)

// DefaultDataDir is the agent's --data-dir default.
const DefaultDataDir = "/var/lib/shoal-agent"

// maxFile bounds what Load reads from each file.
const maxFile = 64 << 10

var (
	// ErrNotEnrolled is Load finding nothing stored.
	ErrNotEnrolled = errors.New("enroll: nothing stored")
	// ErrCorrupt is Load finding files it cannot use.
	ErrCorrupt = errors.New("enroll: stored state unusable")
)

// State is what the agent keeps between starts. Key and Chain are set
// together once enrolled; Key without Chain is an enrollment in flight;
// Nonce alone is one whose key was never written.
type State struct {
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate // leaf first
	Nonce []byte
}

// Leaf is the agent's certificate, or nil.
func (s State) Leaf() *x509.Certificate {
	if len(s.Chain) == 0 {
		return nil
	}
	return s.Chain[0]
}

// Store keeps State under one directory.
type Store struct{ dir string }

// OpenStore makes dir (mode 0700) if needed and tightens it to 0700 if it
// is looser: the key is in it.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("data-dir: required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data-dir (%s): not a directory", dir)
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data-dir (%s): mode %v, and it cannot be made 0700: %w", dir, st.Mode().Perm(), err)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// CredentialsPath is the PEM file with the key and the chain.
func (s *Store) CredentialsPath() string { return filepath.Join(s.dir, CredentialsFile) }

// Save writes st: the nonce first (so a key is never stored without it),
// then the key and chain in one file. Each file is replaced atomically.
// A chain must be for the key.
func (s *Store) Save(st State) error {
	if len(st.Nonce) != NonceSize {
		return fmt.Errorf("enroll: save: nonce is %d bytes, want %d", len(st.Nonce), NonceSize)
	}
	if st.Key == nil && len(st.Chain) > 0 {
		return errors.New("enroll: save: a chain without its key")
	}
	if err := matches(st); err != nil {
		return fmt.Errorf("enroll: save: %w", err)
	}
	nonce := []byte(hex.EncodeToString(st.Nonce) + "\n")
	if old, err := os.ReadFile(filepath.Join(s.dir, NonceFile)); err != nil || !bytes.Equal(old, nonce) {
		if err := writeAtomic(filepath.Join(s.dir, NonceFile), nonce); err != nil {
			return err
		}
	}
	if st.Key == nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(st.Key)
	if err != nil {
		return fmt.Errorf("enroll: save: %w", err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, c := range st.Chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return writeAtomic(s.CredentialsPath(), b.Bytes())
}

// Load returns what is stored: ErrNotEnrolled when nothing is, ErrCorrupt
// when a file cannot be used (the agent then enrolls afresh).
func (s *Store) Load() (State, error) {
	var st State
	nb, nerr := readBounded(filepath.Join(s.dir, NonceFile))
	cb, cerr := readBounded(s.CredentialsPath())
	switch {
	case errors.Is(nerr, fs.ErrNotExist) && errors.Is(cerr, fs.ErrNotExist):
		return State{}, ErrNotEnrolled
	case errors.Is(nerr, fs.ErrNotExist):
		return State{}, fmt.Errorf("%w: %s without %s", ErrCorrupt, CredentialsFile, NonceFile)
	case nerr != nil:
		return State{}, nerr
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return State{}, cerr
	}
	nonce, err := hex.DecodeString(string(bytes.TrimSpace(nb)))
	if err != nil || len(nonce) != NonceSize {
		return State{}, fmt.Errorf("%w: %s: want %d hex-encoded bytes", ErrCorrupt, NonceFile, NonceSize)
	}
	st.Nonce = nonce
	if cerr != nil {
		return st, nil // nonce only
	}
	for rest := cb; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			if st.Key != nil {
				return State{}, fmt.Errorf("%w: %s: more than one key", ErrCorrupt, CredentialsFile)
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			ek, ok := k.(*ecdsa.PrivateKey)
			if err != nil || !ok || ek.Curve != elliptic.P256() {
				return State{}, fmt.Errorf("%w: %s: key is not ECDSA P-256 (%v)", ErrCorrupt, CredentialsFile, err)
			}
			st.Key = ek
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return State{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, CredentialsFile, err)
			}
			st.Chain = append(st.Chain, c)
		}
	}
	if st.Key == nil {
		return State{}, fmt.Errorf("%w: %s: no key", ErrCorrupt, CredentialsFile)
	}
	if err := matches(st); err != nil {
		return State{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, CredentialsFile, err)
	}
	return st, nil
}

func matches(st State) error {
	leaf := st.Leaf()
	if leaf == nil {
		return nil
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&st.Key.PublicKey) {
		return errors.New("the certificate is not for the key")
	}
	return nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrCorrupt, filepath.Base(path), maxFile)
	}
	return b, nil
}

// writeAtomic writes data as path, mode 0600, through a temporary file in
// the same directory, fsync and rename, then syncs the directory so the
// rename survives a crash.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("enroll: save: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("enroll: save %s: %w", filepath.Base(path), err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

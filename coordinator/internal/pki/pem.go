package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes: a key is for its owner only.
const (
	KeyMode  fs.FileMode = 0o600
	CertMode fs.FileMode = 0o644
)

// ErrExists is returned when a file to write is already there and force is
// not set.
var ErrExists = errors.New("already exists (use --force to overwrite)")

// EncodeKey is key as a PEM PKCS #8 "PRIVATE KEY".
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// CertPEM is the CA's certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA's key as PEM.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodeKey(ca.Key) }

// LoadCA reads a CA from certFile and keyFile. certFile may be a bundle
// (the old and new CA during a rotation): the CA is the certificate whose
// public key matches the key. Like ssh with its keys, it refuses a key file
// that others than its owner may read or write.
func LoadCA(certFile, keyFile string) (*CA, error) {
	st, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca-key: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ca-key (%s): mode %04o lets others read or write the CA key; chmod 600 it", keyFile, perm)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca-key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca-key (%s): %w", keyFile, err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("ca-key (%s): %w", keyFile, err)
	}
	for rest := certPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("ca (%s): no certificate matches the key in ca-key (%s)", certFile, keyFile)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca (%s): %w", certFile, err)
		}
		if !bytes.Equal(c.RawSubjectPublicKeyInfo, pub) {
			continue
		}
		if !c.IsCA {
			return nil, fmt.Errorf("ca (%s): %s is not a CA certificate", certFile, c.Subject)
		}
		return &CA{Cert: c, Key: key}, nil
	}
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return ec, nil
}

// Output is one file to write.
type Output struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// WriteFiles writes every file or, if any exists and force is false, none.
// Each file is written beside its target and renamed into place, so a
// reader never sees half a key and a key never exists with a wider mode.
func WriteFiles(force bool, files ...Output) error {
	if !force {
		for _, f := range files {
			if _, err := os.Lstat(f.Path); err == nil {
				return fmt.Errorf("%s: %w", f.Path, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for _, f := range files {
		if err := writeFile(f, force); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	return nil
}

func writeFile(f Output, force bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod sets the exact mode
	// regardless of umask.
	if err := tmp.Chmod(f.Mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(f.Data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(tmp.Name(), f.Path)
	}
	// Link fails if the target appeared since the check: never overwrite.
	if err := os.Link(tmp.Name(), f.Path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	return nil
}

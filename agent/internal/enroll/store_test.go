package enroll

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("empty Load = %v, want ErrNotEnrolled", err)
	}
	req, err := NewRequest("i-0abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Before Enroll: key and nonce, no chain.
	if err := s.Save(State{Key: req.Key, Nonce: req.Nonce}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !got.Key.Equal(req.Key) || !bytes.Equal(got.Nonce, req.Nonce) || got.Leaf() != nil {
		t.Fatalf("pending Load = %+v, %v", got, err)
	}
	// After Enroll: the chain.
	now := time.Now()
	chain := issue(t, req.Key, "agent", "i-0abc", now, now.Add(24*time.Hour))
	if err := s.Save(State{Key: req.Key, Chain: chain, Nonce: req.Nonce}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load()
	if err != nil || !got.Key.Equal(req.Key) || !bytes.Equal(got.Nonce, req.Nonce) || len(got.Chain) != 2 ||
		!got.Chain[0].Equal(chain[0]) || !got.Chain[1].Equal(chain[1]) {
		t.Fatalf("enrolled Load = %+v, %v", got, err)
	}
	// The credentials file works as tlsconf's CertFile and KeyFile at once.
	if _, err := tls.LoadX509KeyPair(s.CredentialsPath(), s.CredentialsPath()); err != nil {
		t.Fatalf("credentials file as a key pair: %v", err)
	}

	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if len(names) != 2 {
		t.Errorf("data dir holds %v, want only %s and %s (no temporary files left)", names, CredentialsFile, NonceFile)
	}
}

func TestOpenStoreTightensMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", st.Mode().Perm())
	}
	file := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(file, nil, 0o600)
	if _, err := OpenStore(file); err == nil {
		t.Fatal("OpenStore on a file succeeded")
	}
	if _, err := OpenStore(""); err == nil {
		t.Fatal("OpenStore(\"\") succeeded")
	}
}

func TestSaveRefuses(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewRequest("i-0abc", nil)
	b, _ := NewRequest("i-0abc", nil)
	now := time.Now()
	cases := []struct {
		name string
		st   State
	}{
		{"no nonce", State{Key: a.Key}},
		{"chain without key", State{Chain: issue(t, a.Key, "agent", "i-0abc", now, now.Add(time.Hour)), Nonce: a.Nonce}},
		{"chain for another key", State{Key: a.Key, Chain: issue(t, b.Key, "agent", "i-0abc", now, now.Add(time.Hour)), Nonce: a.Nonce}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Save(c.st); err == nil {
				t.Fatal("Save succeeded")
			}
			if _, err := s.Load(); !errors.Is(err, ErrNotEnrolled) {
				t.Fatalf("a refused Save left state behind: %v", err)
			}
		})
	}
}

func TestLoadCorrupt(t *testing.T) {
	req, _ := NewRequest("i-0abc", nil)
	other, _ := NewRequest("i-0abc", nil)
	now := time.Now()
	good := t.TempDir()
	gs, _ := OpenStore(good)
	if err := gs.Save(State{Key: req.Key, Chain: issue(t, req.Key, "agent", "i-0abc", now, now.Add(time.Hour)), Nonce: req.Nonce}); err != nil {
		t.Fatal(err)
	}
	creds, _ := os.ReadFile(filepath.Join(good, CredentialsFile))
	nonce, _ := os.ReadFile(filepath.Join(good, NonceFile))
	otherDir := t.TempDir()
	otherStore, _ := OpenStore(otherDir)
	_ = otherStore.Save(State{Key: other.Key, Nonce: other.Nonce})
	otherKey, _ := os.ReadFile(filepath.Join(otherDir, CredentialsFile))
	keyOnly := creds[:bytes.Index(creds, []byte("-----BEGIN CERTIFICATE"))]
	certsOnly := creds[len(keyOnly):]

	cases := []struct {
		name          string
		nonce, creds  []byte // nil: file absent
		wantErr       error
		wantNonceOnly bool
	}{
		{"nonce only", nonce, nil, nil, true},
		{"credentials without nonce", nil, creds, ErrCorrupt, false},
		{"nonce not hex", []byte("zz\n"), creds, ErrCorrupt, false},
		{"nonce too short", []byte("abcd\n"), creds, ErrCorrupt, false},
		{"certificate for another key", nonce, append(append([]byte{}, otherKey...), certsOnly...), ErrCorrupt, false},
		{"no key", nonce, certsOnly, ErrCorrupt, false},
		{"two keys", nonce, append(append([]byte{}, keyOnly...), creds...), ErrCorrupt, false},
		{"oversized", nonce, bytes.Repeat([]byte("x"), maxFile+1), ErrCorrupt, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.nonce != nil {
				_ = os.WriteFile(filepath.Join(dir, NonceFile), c.nonce, 0o600)
			}
			if c.creds != nil {
				_ = os.WriteFile(filepath.Join(dir, CredentialsFile), c.creds, 0o600)
			}
			s, _ := OpenStore(dir)
			st, err := s.Load()
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Load = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.wantNonceOnly && (st.Key != nil || st.Chain != nil || !bytes.Equal(st.Nonce, req.Nonce)) {
				t.Fatalf("Load = %+v, want the nonce alone", st)
			}
		})
	}
}

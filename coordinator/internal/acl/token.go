package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bounds on a token.
const (
	// MaxNameLen bounds a token's name.
	MaxNameLen = 64
	// MinTTL and MaxTTL bound a token's time to live; zero means it never
	// expires. The log keeps whole milliseconds, and a token that lives
	// less than a minute is a mistake more often than a plan.
	MinTTL = time.Minute
	MaxTTL = 10 * 365 * 24 * time.Hour
	// SecretPrefix starts every secret, so a leaked one is recognisable
	// (to people and to secret scanners) as a Shoal token.
	SecretPrefix = "shoal_"
	// secretBytes is the secret's entropy: 256 bits.
	secretBytes = 32
	// SecretLen is the length of a secret: the prefix and 32 bytes in
	// unpadded base64url.
	SecretLen = len(SecretPrefix) + (secretBytes*8+5)/6
	// accessorBytes is the random part of an accessor id.
	accessorBytes = 16
	// AccessorIDLen is the length of an accessor id: 32 hex digits.
	AccessorIDLen = 2 * accessorBytes
	// SecretHashLen is the length of a secret's hash: 64 hex digits.
	SecretHashLen = 2 * sha256.Size
	// BootstrapName names the token acl bootstrap makes.
	BootstrapName = "bootstrap"
)

// ErrMalformed is wrapped by every error about a secret that is not of the
// form Generate makes.
var ErrMalformed = errors.New("malformed token")

// Token is an operator token as the cluster stores it. The secret is never
// stored: only SecretHash, which cannot be turned back into it.
type Token struct {
	// AccessorID names the token in lists and deletes; it is not secret.
	AccessorID string
	Name       string
	Policy     Policy
	// SecretHash is HashSecret of the secret, lower-case hex.
	SecretHash string
	CreatedAt  time.Time
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt time.Time
}

// Expired reports whether t no longer works at now.
func (t Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// Validate checks every field, naming the first that is wrong.
func (t Token) Validate() error {
	if err := t.spec().validateIDs(); err != nil {
		return err
	}
	switch {
	case t.CreatedAt.IsZero():
		return errors.New("created_at: required")
	case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(t.CreatedAt):
		return fmt.Errorf("expires_at (%s): must be after created_at (%s)", t.ExpiresAt.UTC().Format(time.RFC3339), t.CreatedAt.UTC().Format(time.RFC3339))
	case !t.ExpiresAt.IsZero() && t.ExpiresAt.Sub(t.CreatedAt) > MaxTTL:
		return fmt.Errorf("expires_at: more than %s after created_at", MaxTTL)
	}
	return nil
}

func (t Token) spec() Spec {
	return Spec{AccessorID: t.AccessorID, Name: t.Name, Policy: t.Policy, SecretHash: t.SecretHash}
}

// Spec is a token to create: what the server proposes to raft. The FSM
// stamps CreatedAt and computes ExpiresAt from TTL.
type Spec struct {
	AccessorID string
	Name       string
	Policy     Policy
	SecretHash string
	// TTL is how long the token lasts from creation; zero means forever.
	TTL time.Duration
}

// Validate checks every field, naming the first that is wrong.
func (s Spec) Validate() error {
	if err := s.validateIDs(); err != nil {
		return err
	}
	switch {
	case s.TTL < 0:
		return fmt.Errorf("ttl (%s): must not be negative (0 means no expiry)", s.TTL)
	case s.TTL > 0 && s.TTL < MinTTL:
		return fmt.Errorf("ttl (%s): shorter than %s (0 means no expiry)", s.TTL, MinTTL)
	case s.TTL > MaxTTL:
		return fmt.Errorf("ttl (%s): longer than %s", s.TTL, MaxTTL)
	}
	return nil
}

func (s Spec) validateIDs() error {
	if err := CheckName(s.Name); err != nil {
		return err
	}
	if !s.Policy.Valid() {
		return fmt.Errorf("policy (%q): must be one of %s", s.Policy, policyList())
	}
	if !isLowerHex(s.AccessorID, AccessorIDLen) {
		return fmt.Errorf("accessor_id (%q): must be %d lower-case hex digits", clip(s.AccessorID), AccessorIDLen)
	}
	if !isLowerHex(s.SecretHash, SecretHashLen) {
		return fmt.Errorf("secret_hash: must be %d lower-case hex digits (a SHA-256)", SecretHashLen)
	}
	return nil
}

// CheckName reports why name cannot name a token, or nil: 1 to MaxNameLen
// letters, digits, '.', '_' or '-', not starting with '.' or '-'. The
// charset keeps log lines and metadata free of escaping.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("name: required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name: %d characters, longer than %d", len(name), MaxNameLen)
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("name (%q): must not start with %q", name, name[0])
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name (%q): %q not allowed (letters, digits, '.', '_', '-')", name, c)
		}
	}
	return nil
}

// Generate makes a new token's secret, accessor id and hash from
// crypto/rand. The secret is returned to be shown once; the Spec, which
// holds only its hash, is what the server proposes.
func Generate(name string, policy Policy, ttl time.Duration) (secret string, spec Spec, err error) {
	raw := make([]byte, secretBytes+accessorBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Spec{}, fmt.Errorf("generate token: %w", err)
	}
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:secretBytes])
	spec = Spec{
		AccessorID: hex.EncodeToString(raw[secretBytes:]),
		Name:       name,
		Policy:     policy,
		SecretHash: HashSecret(secret),
		TTL:        ttl,
	}
	if err := spec.Validate(); err != nil {
		return "", Spec{}, err
	}
	return secret, spec, nil
}

// HashSecret is the SHA-256 of secret, lower-case hex: what the cluster
// stores and looks tokens up by.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CheckSecret reports whether secret has the form Generate makes, without
// saying anything about whether the cluster knows it.
func CheckSecret(secret string) error {
	switch {
	case !strings.HasPrefix(secret, SecretPrefix):
		return fmt.Errorf("%w: it does not start with %q", ErrMalformed, SecretPrefix)
	case len(secret) != SecretLen:
		return fmt.Errorf("%w: %d characters, want %d", ErrMalformed, len(secret), SecretLen)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret[len(SecretPrefix):]); err != nil {
		return fmt.Errorf("%w: not base64url after %q", ErrMalformed, SecretPrefix)
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

package fsm

import (
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Sentinel errors; every error Apply returns wraps exactly one of them so
// the API layer can pick a status code with errors.Is.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
)

// Kind is the wire name of a sentinel error, so an error survives being
// forwarded from the leader to a follower.
type Kind string

// Kinds, one per sentinel.
const (
	KindInvalid  Kind = "invalid"
	KindNotFound Kind = "not_found"
	KindExists   Kind = "exists"
	KindConflict Kind = "conflict"
)

// Error is a rejected command: Msg names the field and the reason.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap maps the kind back to its sentinel.
func (e *Error) Unwrap() error {
	switch e.Kind {
	case KindNotFound:
		return ErrNotFound
	case KindExists:
		return ErrExists
	case KindConflict:
		return ErrConflict
	default:
		return ErrInvalid
	}
}

func invalidf(format string, a ...any) *Error {
	return &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, a...)}
}
func notFoundf(format string, a ...any) *Error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, a...)}
}
func existsf(format string, a ...any) *Error {
	return &Error{Kind: KindExists, Msg: fmt.Sprintf(format, a...)}
}
func conflictf(format string, a ...any) *Error {
	return &Error{Kind: KindConflict, Msg: fmt.Sprintf(format, a...)}
}

// Result is what Apply returns for every command: the error, or the object
// the command produced (the fleet for fleet commands, the decision for
// decision commands).
type Result struct {
	Err      *Error
	Fleet    *shoalv1.Fleet
	Decision *shoalv1.Decision
}

// Error returns the command's error as an error, or nil.
func (r *Result) Error() error {
	if r == nil || r.Err == nil {
		return nil
	}
	return r.Err
}

type wireResult struct {
	Kind     Kind            `json:"kind,omitempty"`
	Error    string          `json:"error,omitempty"`
	Fleet    json.RawMessage `json:"fleet,omitempty"`
	Decision json.RawMessage `json:"decision,omitempty"`
}

// EncodeResult turns r into bytes for ApplyCommandResponse.result.
func EncodeResult(r *Result) []byte {
	var w wireResult
	if r.Err != nil {
		w.Kind, w.Error = r.Err.Kind, r.Err.Msg
	}
	if r.Fleet != nil {
		w.Fleet, _ = protojson.Marshal(r.Fleet)
	}
	if r.Decision != nil {
		w.Decision, _ = protojson.Marshal(r.Decision)
	}
	return mustJSON(w)
}

// DecodeResult reads what EncodeResult wrote.
func DecodeResult(b []byte) (*Result, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	r := &Result{}
	if w.Error != "" {
		r.Err = &Error{Kind: w.Kind, Msg: w.Error}
	}
	un := protojson.UnmarshalOptions{DiscardUnknown: true}
	if len(w.Fleet) > 0 {
		r.Fleet = &shoalv1.Fleet{}
		if err := un.Unmarshal(w.Fleet, r.Fleet); err != nil {
			return nil, fmt.Errorf("decode result fleet: %w", err)
		}
	}
	if len(w.Decision) > 0 {
		r.Decision = &shoalv1.Decision{}
		if err := un.Unmarshal(w.Decision, r.Decision); err != nil {
			return nil, fmt.Errorf("decode result decision: %w", err)
		}
	}
	return r, nil
}

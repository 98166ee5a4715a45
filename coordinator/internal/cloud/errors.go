package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ErrorClass says whether trying the same call again later can succeed.
type ErrorClass int

const (
	// ClassNone is the class of a nil error.
	ClassNone ErrorClass = iota
	// ClassRetryable errors may go away on their own: throttling, 5xx,
	// timeouts, connection failures, a scaling activity in progress.
	ClassRetryable
	// ClassFatal errors will not: validation, not found, access denied.
	ClassFatal
)

func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetryable:
		return "retryable"
	case ClassFatal:
		return "fatal"
	}
	return fmt.Sprintf("ErrorClass(%d)", int(c))
}

// Proto returns the class as the decision status carries it.
func (c ErrorClass) Proto() shoalv1.ErrorClass {
	switch c {
	case ClassRetryable:
		return shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE
	case ClassFatal:
		return shoalv1.ErrorClass_ERROR_CLASS_FATAL
	}
	return shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
}

// Sentinel errors. Implementations wrap the cloud's own error in an *Error
// whose Kind is one of these, so callers use errors.Is.
var (
	ErrThrottled                 = errors.New("throttled")
	ErrUnavailable               = errors.New("service unavailable")
	ErrScalingActivityInProgress = errors.New("scaling activity in progress")
	ErrResourceContention        = errors.New("resource contention")
	ErrInsufficientCapacity      = errors.New("insufficient capacity")
	ErrGroupNotFound             = errors.New("group not found")
	ErrInstanceNotFound          = errors.New("instance not found")
	ErrLifecycleActionNotFound   = errors.New("lifecycle action not found")
	ErrNotFound                  = errors.New("not found")
	ErrAlreadyExists             = errors.New("already exists")
	ErrValidation                = errors.New("invalid request")
	ErrLimitExceeded             = errors.New("limit exceeded")
	ErrAccessDenied              = errors.New("access denied")
	ErrResourceInUse             = errors.New("resource in use")
)

var retryableKinds = []error{ErrThrottled, ErrUnavailable, ErrScalingActivityInProgress, ErrResourceContention, ErrInsufficientCapacity}

// Error is a failed cloud call.
type Error struct {
	// Op is the operation as IAM names it, e.g. "autoscaling:SetDesiredCapacity".
	Op string
	// Code is the cloud's error code ("Throttling", "ValidationError", ...)
	// and Status the HTTP status; both are empty/zero for transport errors.
	Code   string
	Status int
	// Kind is one of the sentinel errors above, or nil when the error is
	// none of them (it is then classified by Status).
	Kind error
	Err  error
}

func (e *Error) Error() string {
	kind := ""
	if e.Kind != nil {
		kind = " (" + e.Kind.Error() + ")"
	}
	return fmt.Sprintf("%s%s: %v", e.Op, kind, e.Err)
}

func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Class is the error's class: by Kind when set, else 5xx retryable and
// everything else fatal.
func (e *Error) Class() ErrorClass {
	for _, k := range retryableKinds {
		if e.Kind == k {
			return ClassRetryable
		}
	}
	if e.Kind != nil {
		return ClassFatal
	}
	if e.Status >= 500 {
		return ClassRetryable
	}
	if e.Status == 0 {
		// No response at all: the call never reached a service that
		// could refuse it.
		return classifyTransport(e.Err)
	}
	return ClassFatal
}

// Classify says whether err is worth retrying. Errors from a cloud
// implementation carry their class; context expiry and connection failures
// are retryable (the call may succeed once the network or the leader is
// back); anything else is fatal, because retrying an error nobody understood
// would hide it.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Class()
	}
	return classifyTransport(err)
}

func classifyTransport(err error) ErrorClass {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ClassRetryable
	}
	for _, k := range retryableKinds {
		if errors.Is(err, k) {
			return ClassRetryable
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ClassRetryable
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ClassRetryable
	}
	return ClassFatal
}

package upstream

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// DialError marks a failure to reach a backend: nothing was sent.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return DescribeDial(e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// DescribeDial says why addr could not be reached, in the words the error
// bodies and the report use.
func DescribeDial(addr string, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect refused " + addr
	case errors.As(err, &ne) && ne.Timeout():
		return "connect timeout " + addr
	}
	return fmt.Sprintf("connect %s: %v", addr, err)
}

// IsDialErr reports whether err happened before any byte reached the
// backend.
func IsDialErr(err error) bool {
	var de *DialError
	if errors.As(err, &de) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Describe says how a try on the backend at addr failed.
func Describe(addr string, err error) string {
	var de *DialError
	if errors.As(err, &de) {
		return de.Error()
	}
	if IsDialErr(err) {
		return DescribeDial(addr, err)
	}
	return "backend " + addr + ": " + err.Error()
}

package localcloud

import (
	"net/http"
	"sync"
)

// faults are injected failures for tests of Shoal's error handling. They
// live behind the /_localcloud/ hooks only.
type faults struct {
	mu     sync.Mutex
	launch map[string]*launchFault // group ("*" for all)
	api    map[string]*apiFault
}

type apiFault struct {
	remaining int
	err       APIError
}

// launchFault fails launches with msg: the next remaining ones, or every
// one until cleared when remaining is 0.
type launchFault struct {
	msg       string
	remaining int
}

func newFaults() faults {
	return faults{launch: map[string]*launchFault{}, api: map[string]*apiFault{}}
}

// setLaunchFailure makes the next count launches into group fail with msg
// (count 0: all of them until cleared); an empty msg clears it.
func (f *faults) setLaunchFailure(group, msg string, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == "" {
		delete(f.launch, group)
		return
	}
	f.launch[group] = &launchFault{msg: msg, remaining: count}
}

// launchFailure consumes one injected failure for group, its own first.
func (f *faults) launchFailure(group string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range []string{group, "*"} {
		if lf := f.launch[k]; lf != nil {
			if lf.remaining > 0 {
				if lf.remaining--; lf.remaining == 0 {
					delete(f.launch, k)
				}
			}
			return lf.msg, true
		}
	}
	return "", false
}

// faultCodes maps the codes a test may inject to what AWS sends with them.
var faultCodes = map[string]int{
	"Throttling":                   http.StatusBadRequest,
	"ThrottlingException":          http.StatusBadRequest,
	"RequestLimitExceeded":         http.StatusServiceUnavailable,
	"InternalFailure":              http.StatusInternalServerError,
	"InternalError":                http.StatusInternalServerError,
	"ServiceUnavailable":           http.StatusServiceUnavailable,
	"InsufficientInstanceCapacity": http.StatusInternalServerError,
	"ServiceUnavailableException":  http.StatusServiceUnavailable,
	"ResourceContention":           http.StatusInternalServerError,
	"ScalingActivityInProgress":    http.StatusBadRequest,
}

func (f *faults) setAPIFault(op, code string, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if count <= 0 {
		delete(f.api, op)
		return
	}
	f.api[op] = &apiFault{remaining: count, err: APIError{Code: code, Status: faultCodes[code], Message: "injected by the local cloud's fault hook"}}
}

// takeAPIFault consumes one injected failure for op ("*" matches any).
func (f *faults) takeAPIFault(op string) *APIError {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range []string{op, "*"} {
		if af := f.api[k]; af != nil {
			af.remaining--
			if af.remaining <= 0 {
				delete(f.api, k)
			}
			e := af.err
			return &e
		}
	}
	return nil
}

package localcloud

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// faults are injected failures for tests of Shoal's error handling and for
// the nemesis harness (deploy/chaos). They live behind the /_localcloud/
// hooks only.
type faults struct {
	mu     sync.Mutex
	launch map[string]*launchFault // group ("*" for all)
	api    []*apiFault             // in the order they were set
}

// launchFault fails launches with msg: the next remaining ones, or every
// one until cleared when remaining is 0.
type launchFault struct {
	msg       string
	remaining int
}

// Fault kinds of the API fault hook. kindCode is the older query-string
// form (operation=&code=&count=), which names the AWS error code itself.
const (
	kindCode     = "code"
	kind5xx      = "5xx"
	kindThrottle = "throttle"
	kindLatency  = "latency"
	kindDrop     = "drop_response"
)

// maxAPIFaults bounds the rules the hook keeps: the hook is outside input.
const maxAPIFaults = 64

// maxFaultLatency bounds an injected latency; longer is no more useful and
// would hold the server's shutdown.
const maxFaultLatency = 2 * time.Minute

// APIFault is one rule of POST /_localcloud/faults/api (JSON body).
type APIFault struct {
	// Op is an API operation name, or "*" for all.
	Op string `json:"op"`
	// Service is autoscaling, ec2, monitoring, or "*" (empty = "*").
	Service string `json:"service"`
	// Kind is 5xx, throttle, latency or drop_response.
	Kind string `json:"kind"`
	// Count is how many matching calls the rule hits; 0 = until cleared.
	Count int `json:"count"`
	// LatencyMS is the delay a latency rule adds before the call runs.
	LatencyMS int `json:"latency_ms,omitempty"`
}

// Validate names the field that is wrong and why.
func (f APIFault) Validate() error {
	switch {
	case f.Op == "":
		return fmt.Errorf("op is required (an API operation name, or * for all)")
	case f.Service != "" && f.Service != "*" && f.Service != "autoscaling" && f.Service != "ec2" && f.Service != "monitoring":
		return fmt.Errorf("service %q must be autoscaling, ec2, monitoring or *", f.Service)
	case f.Count < 0:
		return fmt.Errorf("count (%d) must be >= 0 (0 = until cleared)", f.Count)
	}
	switch f.Kind {
	case kind5xx, kindThrottle, kindDrop:
		if f.LatencyMS != 0 {
			return fmt.Errorf("latency_ms is only for kind latency, not %q", f.Kind)
		}
	case kindLatency:
		if f.LatencyMS <= 0 || time.Duration(f.LatencyMS)*time.Millisecond > maxFaultLatency {
			return fmt.Errorf("latency_ms (%d) must be between 1 and %d for kind latency", f.LatencyMS, maxFaultLatency.Milliseconds())
		}
	default:
		return fmt.Errorf("kind %q must be one of 5xx, throttle, latency, drop_response", f.Kind)
	}
	return nil
}

type apiFault struct {
	APIFault
	remaining int       // calls left; -1 = until cleared
	err       *APIError // kindCode only
}

// faultPlan is what the rules do to one call.
type faultPlan struct {
	err     *APIError
	latency time.Duration
	drop    bool
	// names lists the kinds that hit, for the audit log.
	names []string
}

func newFaults() faults {
	return faults{launch: map[string]*launchFault{}}
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

const injectedMessage = "injected by the local cloud's fault hook"

// setAPIFault is the query-string form: the next count calls of op fail
// with code. It replaces an earlier code rule for the same op; count <= 0
// clears every rule for op.
func (f *faults) setAPIFault(op, code string, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(func(a *apiFault) bool { return a.Op == op && (count <= 0 || a.Kind == kindCode) })
	if count <= 0 {
		return
	}
	f.api = append(f.api, &apiFault{
		APIFault:  APIFault{Op: op, Service: "*", Kind: kindCode, Count: count},
		remaining: count,
		err:       &APIError{Code: code, Status: faultCodes[code], Message: injectedMessage},
	})
}

// addAPIFault adds a rule of the JSON form.
func (f *faults) addAPIFault(a APIFault) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Service == "" {
		a.Service = "*"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.api) >= maxAPIFaults {
		return fmt.Errorf("already %d fault rules: DELETE /_localcloud/faults/api to clear them first", maxAPIFaults)
	}
	rem := a.Count
	if rem == 0 {
		rem = -1
	}
	f.api = append(f.api, &apiFault{APIFault: a, remaining: rem})
	return nil
}

// clearAPIFaults removes every API fault rule.
func (f *faults) clearAPIFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.api = nil
}

func (f *faults) removeLocked(drop func(*apiFault) bool) {
	kept := f.api[:0]
	for _, a := range f.api {
		if !drop(a) {
			kept = append(kept, a)
		}
	}
	clear(f.api[len(kept):])
	f.api = kept
}

// take consumes the rules that hit one call of op on service. Rules naming
// op come before "*" rules, each in the order they were set. Every latency
// rule that matches adds its delay; the first rule that fails or drops the
// call decides its outcome, and later ones are not consumed.
func (f *faults) take(service, op string) faultPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	var p faultPlan
	decided := false
	for _, exact := range []bool{true, false} {
		for _, a := range f.api {
			if (a.Op == op) != exact || (!exact && a.Op != "*") || (a.Service != "*" && a.Service != service) {
				continue
			}
			if a.Kind != kindLatency && decided {
				continue
			}
			switch a.Kind {
			case kindLatency:
				p.latency += time.Duration(a.LatencyMS) * time.Millisecond
			case kindDrop:
				p.drop, decided = true, true
			case kindCode:
				e := *a.err
				p.err, decided = &e, true
			default:
				p.err, decided = serviceFault(service, a.Kind), true
			}
			p.names = append(p.names, a.Kind)
			if a.remaining > 0 {
				a.remaining--
			}
		}
	}
	f.removeLocked(func(a *apiFault) bool { return a.remaining == 0 })
	if p.latency > maxFaultLatency {
		p.latency = maxFaultLatency
	}
	return p
}

// serviceFault is the error each service sends for a 5xx or throttle, in
// its own codes: EC2 throttles with RequestLimitExceeded (503), the others
// with Throttling (400); EC2's server error is InternalError, the others'
// InternalFailure.
func serviceFault(service, kind string) *APIError {
	code := "InternalFailure"
	switch {
	case kind == kindThrottle && service == "ec2":
		code = "RequestLimitExceeded"
	case kind == kindThrottle:
		code = "Throttling"
	case service == "ec2":
		code = "InternalError"
	}
	return &APIError{Code: code, Status: faultCodes[code], Message: injectedMessage}
}

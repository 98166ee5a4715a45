package localcloud

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveHook serves the test hooks under /_localcloud/, a path no AWS API
// uses. They need no signature: they exist for tests and demos on loopback.
func (s *Server) serveHook(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := strings.TrimPrefix(r.URL.Path, hookPrefix)
	switch {
	case path == "health":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case path == "clock":
		s.hookClock(w, r)
	case path == "reconcile" && r.Method == http.MethodPost:
		s.cloud.Reconcile()
		writeJSON(w, http.StatusOK, map[string]string{"now": s.cloud.Now().UTC().Format(time.RFC3339Nano)})
	case path == "alarms/evaluate" && r.Method == http.MethodPost:
		n := s.cloud.EvaluateAlarms()
		writeJSON(w, http.StatusOK, map[string]any{"changed": n, "now": s.cloud.Now().UTC().Format(time.RFC3339Nano)})
	case path == "instances" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.cloud.ListInstances())
	case path == "faults/launch":
		s.hookLaunchFault(w, r) // spot.go
	case path == "interrupt":
		s.hookInterrupt(w, r) // spot.go
	case path == "events":
		s.hookEvents(w, r) // events.go
	case path == "faults/api" && r.Method == http.MethodPost && q.Get("operation") == "":
		s.hookAddAPIFault(w, r)
	case path == "faults/api" && r.Method == http.MethodDelete && q.Get("operation") == "":
		s.cloud.faults.clearAPIFaults()
		writeJSON(w, http.StatusOK, map[string]any{"cleared": true})
	case path == "faults/api":
		s.hookQueryAPIFault(w, r)
	case path == "audit" && r.Method == http.MethodGet:
		s.serveAudit(w, r)
	default:
		hookError(w, http.StatusNotFound, "unknown hook "+r.Method+" "+r.URL.Path)
	}
}

// hookQueryAPIFault is the query-string form of the API fault hook:
// operation=Op&code=C&count=N.
func (s *Server) hookQueryAPIFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op := q.Get("operation")
	switch r.Method {
	case http.MethodPost:
		code := q.Get("code")
		if code == "" {
			code = "Throttling"
		}
		if _, ok := faultCodes[code]; !ok {
			hookError(w, http.StatusBadRequest, fmt.Sprintf("code %q is not one the local cloud can inject", code))
			return
		}
		count := 1
		if v := q.Get("count"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				hookError(w, http.StatusBadRequest, fmt.Sprintf("count (%q) must be an integer >= 1", v))
				return
			}
			count = n
		}
		s.cloud.faults.setAPIFault(op, code, count)
		writeJSON(w, http.StatusOK, map[string]any{"operation": op, "code": code, "count": count})
	case http.MethodDelete:
		s.cloud.faults.setAPIFault(op, "", 0)
		writeJSON(w, http.StatusOK, map[string]any{"operation": op, "count": 0})
	default:
		hookError(w, http.StatusMethodNotAllowed, "use POST to inject, DELETE to clear")
	}
}

// maxHookBody bounds a hook's JSON body.
const maxHookBody = 64 << 10

// hookAddAPIFault is the JSON form of the API fault hook (APIFault).
func (s *Server) hookAddAPIFault(w http.ResponseWriter, r *http.Request) {
	var f APIFault
	dec := json.NewDecoder(io.LimitReader(r.Body, maxHookBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		hookError(w, http.StatusBadRequest, "body must be a JSON fault {op, service, kind, count, latency_ms} (or give ?operation= for the query form): "+err.Error())
		return
	}
	if err := s.cloud.faults.addAPIFault(f); err != nil {
		hookError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cloud.log.Info("api fault set", "op", f.Op, "service", f.Service, "kind", f.Kind, "count", f.Count, "latency_ms", f.LatencyMS)
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) hookClock(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if s.clock == nil {
			hookError(w, http.StatusConflict, "the clock was injected from outside and cannot be moved here")
			return
		}
		switch {
		case q.Get("advance") != "":
			d, err := time.ParseDuration(q.Get("advance"))
			if err != nil || d < 0 {
				hookError(w, http.StatusBadRequest, fmt.Sprintf("advance (%q) must be a non-negative duration such as 60s", q.Get("advance")))
				return
			}
			s.clock.Advance(d)
		case q.Get("set") != "":
			t, err := time.Parse(time.RFC3339Nano, q.Get("set"))
			if err != nil {
				hookError(w, http.StatusBadRequest, fmt.Sprintf("set (%q) must be an RFC 3339 time", q.Get("set")))
				return
			}
			if !s.clock.Set(t) {
				hookError(w, http.StatusBadRequest, "set must not move the clock backwards")
				return
			}
		default:
			hookError(w, http.StatusBadRequest, "give advance=<duration> or set=<RFC 3339 time>")
			return
		}
		// Time moved: let everything that waits on it act now, as it would
		// have while that much time passed.
		s.cloud.Reconcile()
		s.cloud.EvaluateAlarms()
	}
	writeJSON(w, http.StatusOK, map[string]string{"now": s.cloud.Now().UTC().Format(time.RFC3339Nano)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func hookError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

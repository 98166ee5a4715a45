package localcloud

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TermHeader carries the raft term of the coordinator leadership that made
// a call. The local cloud only records it: AWS has no fencing, and neither
// does its double.
const TermHeader = "X-Shoal-Term"

// maxAudit bounds the audit log's memory; records past it are counted, not
// kept, and GET /_localcloud/audit reports the count in auditDroppedHeader.
const maxAudit = 200_000

const auditDroppedHeader = "X-Localcloud-Audit-Dropped"

// AuditRecord is one mutating API call as the local cloud received it: the
// independent record the nemesis checker holds Shoal's effects against.
type AuditRecord struct {
	Seq int64 `json:"seq"`
	// AtMS is the wall-clock arrival (Unix ms), before any injected
	// latency; DoneMS is when the call had been applied (or refused).
	AtMS    int64  `json:"at_ms"`
	DoneMS  int64  `json:"done_ms"`
	Service string `json:"service"`
	Op      string `json:"op"`
	// Caller is the SigV4 access key ID the call was signed with.
	Caller string `json:"caller"`
	// Term is TermHeader's value, 0 when absent or not a number.
	Term      uint64 `json:"term"`
	Group     string `json:"group,omitempty"`
	Desired   *int   `json:"desired,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Decrement *bool  `json:"decrement,omitempty"`
	// Status is the HTTP status answered, or the one that would have been
	// for drop_response; 0 while the call is still running.
	Status int `json:"status"`
	// Fault names the injected fault kinds that hit the call, comma-separated.
	Fault string `json:"fault,omitempty"`
}

type audit struct {
	mu      sync.Mutex
	recs    []AuditRecord
	next    int64
	dropped int64
}

// mutating reports whether an operation changes state: every AWS read is
// a Describe, Get or List.
func mutating(op string) bool {
	for _, p := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return op != ""
}

// begin records a call's arrival and returns its index (-1 when not kept).
func (a *audit) begin(r *http.Request, service, op string, f qform) int {
	rec := AuditRecord{AtMS: time.Now().UnixMilli(), Service: service, Op: op, Caller: accessKey(r)}
	rec.Term, _ = strconv.ParseUint(r.Header.Get(TermHeader), 10, 64)
	if f != nil {
		rec.Group = f.str("AutoScalingGroupName")
		rec.Instance = f.str("InstanceId")
		if ids := f.list("InstanceId"); rec.Instance == "" && len(ids) > 0 {
			rec.Instance = strings.Join(ids, ",")
		}
		if n, err := f.intp("DesiredCapacity"); err == nil {
			rec.Desired = n
		}
		rec.Decrement = f.boolp("ShouldDecrementDesiredCapacity")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	rec.Seq = a.next
	if len(a.recs) >= maxAudit {
		a.dropped++
		return -1
	}
	a.recs = append(a.recs, rec)
	return len(a.recs) - 1
}

func (a *audit) end(i, status int, fault []string) {
	if i < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs[i].Status = status
	a.recs[i].DoneMS = time.Now().UnixMilli()
	a.recs[i].Fault = strings.Join(fault, ",")
}

// since returns a copy of the records with Seq > after, and the number of
// records dropped past maxAudit.
func (a *audit) since(after int64) ([]AuditRecord, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AuditRecord
	for _, r := range a.recs {
		if r.Seq > after {
			out = append(out, r)
		}
	}
	return out, a.dropped
}

// accessKey is the access key ID of a SigV4 Authorization header.
func accessKey(r *http.Request) string {
	if m := sigv4Header.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	return ""
}

// gate runs one API call through the fault rules and the audit log. When it
// returns ok, the caller serves the call on the returned writer and then
// calls done; otherwise the fault has already answered.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, service, op string, f qform, writeErr func(http.ResponseWriter, *APIError)) (_ http.ResponseWriter, done func(), ok bool) {
	idx := -1
	if mutating(op) {
		idx = s.audit.begin(r, service, op, f)
	}
	plan := s.cloud.faults.take(service, op)
	if plan.latency > 0 {
		// The call still runs when the client has given up meanwhile, as
		// a slow AWS request may still be applied.
		t := time.NewTimer(plan.latency)
		<-t.C
	}
	if plan.err != nil {
		writeErr(w, plan.err)
		s.audit.end(idx, plan.err.Status, plan.names)
		return nil, nil, false
	}
	if plan.drop {
		dw := &discardWriter{header: http.Header{}}
		return dw, func() {
			s.audit.end(idx, dw.statusOr200(), plan.names)
			abortResponse(w)
		}, true
	}
	sw := &statusWriter{ResponseWriter: w}
	return sw, func() { s.audit.end(idx, sw.statusOr200(), plan.names) }, true
}

// abortResponse closes the client's connection without an answer: the call
// was applied, its response is lost on the way.
func abortResponse(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// net/http closes the connection of a handler that panics with this.
	panic(http.ErrAbortHandler)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// discardWriter takes the answer of a call whose response is dropped.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

func (w *discardWriter) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// serveAudit answers GET /_localcloud/audit[?since=seq] with JSON lines.
func (s *Server) serveAudit(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			hookError(w, http.StatusBadRequest, "since ("+strconv.Quote(v)+") must be a sequence number >= 0")
			return
		}
		after = n
	}
	recs, dropped := s.audit.since(after)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set(auditDroppedHeader, strconv.FormatInt(dropped, 10))
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, rec := range recs {
		_ = enc.Encode(rec)
	}
}

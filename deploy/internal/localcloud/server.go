package localcloud

import (
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// API versions the SDK sends in the Version form field.
const (
	autoscalingVersion = "2011-01-01"
	ec2Version         = "2016-11-15"
	rpcv2Prefix        = "/service/"
	cloudwatchPrefix   = "/service/GraniteServiceVersion20100801/operation/"
	hookPrefix         = "/_localcloud/"
)

// sigv4Header is the shape of a SigV4 Authorization header. Signatures are
// not verified: the local cloud accepts any key and secret, by design.
var sigv4Header = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*SignedHeaders=([a-z0-9;.\-]+),\s*Signature=([0-9a-f]{64})$`)

// Server is the HTTP front of a Cloud: the AWS endpoint plus test hooks.
type Server struct {
	cloud *Cloud
	clock *OffsetClock // nil when the clock was injected from outside
	audit audit
	http  *http.Server
	ln    net.Listener
	stop  context.CancelFunc
	done  chan struct{}
}

// NewServer builds the cloud and its HTTP server without listening.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = NewOffsetClock()
	}
	c, err := NewCloud(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cloud: c, done: make(chan struct{})}
	s.clock, _ = cfg.Clock.(*OffsetClock)
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Cloud exposes the state, for in-process tests.
func (s *Server) Cloud() *Cloud { return s.cloud }

// Start listens on cfg.Addr (use port 0 in tests) and runs the cloud.
func (s *Server) Start() error {
	if out := s.cloud.cfg.IIDCertOut; out != "" {
		if err := writeFileAtomic(out, s.cloud.iid.certPEM, 0o644); err != nil {
			return fmt.Errorf("iid-cert-out: %w", err)
		}
		s.cloud.log.Info("instance identity certificate written", "file", out)
	}
	ln, err := net.Listen("tcp", s.cloud.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.cloud.mu.Lock()
	s.cloud.endpoint = "http://" + ln.Addr().String()
	s.cloud.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		s.cloud.Run(ctx)
	}()
	go func() { _ = s.http.Serve(ln) }()
	s.cloud.log.Info("local cloud listening", "addr", ln.Addr().String())
	return nil
}

// URL is the endpoint to give AWS_ENDPOINT_URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops serving and stops every instance process group.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.cloud.Shutdown(s.cloud.cfg.TerminateGrace)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// ServeHTTP dispatches by path, then by what the request says about its
// service: the Smithy RPC v2 path and smithy-protocol header, the
// X-Amz-Target header (JSON 1.0), the SigV4 credential scope, and last the
// Version form field (awsQuery and ec2query).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, hookPrefix) {
		s.serveHook(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, rpcv2Prefix) || r.Header.Get("Smithy-Protocol") != "" {
		if _, ok := checkAuth(r); !ok {
			writeCBORError(w, &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing a well-formed SigV4 Authorization header"})
			return
		}
		if p := r.Header.Get("Smithy-Protocol"); p != "" && p != "rpc-v2-cbor" {
			writeCBORError(w, apiErr(http.StatusBadRequest, "InvalidAction", "smithy-protocol %q is not served: the local cloud speaks rpc-v2-cbor", p))
			return
		}
		if !strings.HasPrefix(r.URL.Path, cloudwatchPrefix) {
			writeCBORError(w, apiErr(http.StatusBadRequest, "InvalidAction", "RPC v2 CBOR path %q is not served: the local cloud serves CloudWatch at %s<Operation>", r.URL.Path, cloudwatchPrefix))
			return
		}
		s.serveCloudWatchCBOR(w, r, strings.TrimPrefix(r.URL.Path, cloudwatchPrefix))
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		if _, ok := checkAuth(r); !ok {
			jsonProtocol{}.writeError(w, &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing a well-formed SigV4 Authorization header"})
			return
		}
		if !strings.HasPrefix(target, cwTargetPrefix) {
			jsonProtocol{}.writeError(w, apiErr(http.StatusBadRequest, "InvalidAction", "X-Amz-Target %q is not served: the local cloud serves JSON 1.0 for CloudWatch only (%s<Operation>)", target, cwTargetPrefix))
			return
		}
		s.serveCloudWatchJSON(w, r, target)
		return
	}
	body, err := readBody(r, maxFormBody)
	if err != nil {
		writeQueryError(w, "", err)
		return
	}
	form, perr := url.ParseQuery(string(body))
	if perr != nil {
		form = url.Values{}
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	scope, authOK := checkAuth(r)
	service := scope
	switch {
	case service == "autoscaling" || service == "ec2" || service == "monitoring" || service == "sts":
	case form.Get("Version") == autoscalingVersion:
		service = "autoscaling"
	case form.Get("Version") == ec2Version:
		service = "ec2"
	case form.Get("Version") == cloudwatchVersion:
		service = "monitoring"
	case form.Get("Version") == stsVersion:
		service = "sts"
	}
	action := form.Get("Action")
	switch service {
	case "autoscaling":
		if !authOK {
			writeQueryError(w, "", &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing a well-formed SigV4 Authorization header"})
			return
		}
		s.serveAutoScaling(w, r, action, qform(form))
	case "ec2":
		if !authOK {
			writeEC2Error(w, &APIError{Status: http.StatusUnauthorized, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials: the Authorization header is missing or malformed"})
			return
		}
		s.serveEC2(w, r, action, qform(form))
	case "monitoring":
		if !authOK {
			queryProtocol{}.writeError(w, &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing a well-formed SigV4 Authorization header"})
			return
		}
		if len(body) > maxCloudWatchBody {
			queryProtocol{}.writeError(w, apiErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than %d bytes.", maxCloudWatchBody))
			return
		}
		s.serveCloudWatchQuery(w, r, form)
	case "sts":
		if !authOK {
			writeSTSError(w, &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationToken", Message: "Request is missing a well-formed SigV4 Authorization header"})
			return
		}
		s.serveSTS(w, r, action)
	default:
		writeQueryError(w, "", &APIError{Status: http.StatusBadRequest, Code: "InvalidAction", Message: fmt.Sprintf("Could not determine the service (SigV4 scope %q, Version %q): send a SigV4 credential scope of autoscaling, ec2, monitoring or sts, an X-Amz-Target, or a known Version (%s, %s, %s, %s)", scope, form.Get("Version"), autoscalingVersion, ec2Version, cloudwatchVersion, stsVersion)})
	}
}

// maxFormBody bounds awsQuery and ec2query bodies; CloudWatch's own limit
// (maxCloudWatchBody) is lower and checked once the service is known.
const maxFormBody = 16 << 20

// readBody reads a body of at most limit bytes, gunzipping it when the
// client compressed it (botocore gzips large PutMetricData requests).
func readBody(r *http.Request, limit int) ([]byte, *APIError) {
	var src io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(io.LimitReader(r.Body, int64(limit)+1))
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, "SerializationException", "gzip body: %v", err)
		}
		defer zr.Close()
		src = zr
	}
	body, err := io.ReadAll(io.LimitReader(src, int64(limit)+1))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "SerializationException", "read body: %v", err)
	}
	if len(body) > limit {
		return nil, apiErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than %d bytes.", limit)
	}
	return body, nil
}

// checkAuth returns the credential scope's service when the Authorization
// header is well-formed SigV4.
func checkAuth(r *http.Request) (string, bool) {
	m := sigv4Header.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "", false
	}
	return m[4], true
}

func requestID() string { return newUUID() }

// qform reads awsQuery / ec2query form fields.
type qform url.Values

func (f qform) str(k string) string { return url.Values(f).Get(k) }

func (f qform) has(k string) bool { _, ok := f[k]; return ok }

func (f qform) intp(k string) (*int, error) {
	v, ok := f[k]
	if !ok || len(v) == 0 {
		return nil, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil {
		return nil, validation("%s (%q) must be an integer", k, v[0])
	}
	return &n, nil
}

func (f qform) boolp(k string) *bool {
	v, ok := f[k]
	if !ok || len(v) == 0 {
		return nil
	}
	b := v[0] == "true"
	return &b
}

// list returns prefix.1, prefix.2, ... (prefix includes ".member" for
// awsQuery lists).
func (f qform) list(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// structs returns the prefixes prefix.1, prefix.2, ... that have fields.
func (f qform) structs(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		p := prefix + "." + strconv.Itoa(i) + "."
		found := false
		for k := range f {
			if strings.HasPrefix(k, p) {
				found = true
				break
			}
		}
		if !found {
			return out
		}
		out = append(out, p)
	}
}

// awsTime marshals as ISO 8601 with milliseconds, as AWS XML does.
type awsTime time.Time

func (t awsTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z")), nil
}

func writeXML(w http.ResponseWriter, status int, start xml.StartElement, parts ...any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	_ = enc.EncodeToken(start)
	for i := 0; i+1 < len(parts); i += 2 {
		if parts[i+1] == nil {
			continue
		}
		_ = enc.EncodeElement(parts[i+1], xml.StartElement{Name: xml.Name{Local: parts[i].(string)}})
	}
	_ = enc.EncodeToken(start.End())
	_ = enc.Flush()
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// writeQueryResponse writes <OpResponse><OpResult>…</OpResult><ResponseMetadata>.
func writeQueryResponse(w http.ResponseWriter, action string, result any) {
	if result == nil {
		result = struct{}{}
	}
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "http://autoscaling.amazonaws.com/doc/2011-01-01/"}}}
	writeXML(w, http.StatusOK, start, action+"Result", result, "ResponseMetadata", responseMetadata{requestID()})
}

func writeQueryError(w http.ResponseWriter, _ string, e *APIError) {
	type errBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	start := xml.StartElement{Name: xml.Name{Local: "ErrorResponse"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "http://autoscaling.amazonaws.com/doc/2011-01-01/"}}}
	writeXML(w, e.Status, start, "Error", errBody{typ, e.Code, e.Message}, "RequestId", requestID())
}

func writeEC2Error(w http.ResponseWriter, e *APIError) {
	type errBody struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type errs struct {
		Error errBody `xml:"Error"`
	}
	writeXML(w, e.Status, xml.StartElement{Name: xml.Name{Local: "Response"}}, "Errors", errs{errBody{e.Code, e.Message}}, "RequestID", requestID())
}

// ec2Envelope is embedded in every EC2 response struct: ec2query has no
// Result wrapper, so the fields sit directly under <OpResponse>.
type ec2Envelope struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func env() ec2Envelope {
	return ec2Envelope{Xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/", RequestID: requestID()}
}

func writeEC2Response(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		writeEC2Error(w, apiErr(http.StatusInternalServerError, "InternalError", "%v", err))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

package h1

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// Request is a whole request from another engine (an HTTP/2 client's
// non-gRPC request) for an HTTP/1.1 backend.
type Request struct {
	Method, Path, Authority string
	// Header holds lower-case names without pseudo fields; hop-by-hop
	// fields are left out here.
	Header   [][2]string
	Body     []byte
	RemoteIP string
}

// Response is a whole response for another engine.
type Response struct {
	Status int
	// Header holds lower-case names, without hop-by-hop fields and
	// without Content-Length (the body is whole).
	Header [][2]string
	Body   []byte
}

// Failure is a response made up by the proxy.
type Failure struct {
	Status int
	Msg    string
}

// RoundTrip sends req to an HTTP/1.1 backend and reads the whole response,
// with the same pick, retry and error rules as the engine's own clients.
func (e *Engine) RoundTrip(req *Request) (*Response, *Failure) {
	if err := req.check(); err != nil {
		return nil, &Failure{400, err.Error()}
	}
	a := e.bal.Attempt()
	defer a.Close()
	fresh := false
	for {
		be, err := a.Pick()
		if err != nil {
			if a.Tried() {
				return nil, &Failure{502, a.Last()}
			}
			return nil, &Failure{503, err.Error()}
		}
		start := time.Now()
		bc, err := conn(upstream.Of(be), fresh)
		if err != nil {
			o := balance.Outcome{ConnectFailed: true, Failed: true, Err: err.Error(), Latency: time.Since(start)}
			if a.Failed(be, o, balance.Unsent) {
				continue
			}
			return nil, &Failure{502, a.Last()}
		}
		resp, rh, err := e.tryRoundTrip(bc, req, start)
		if err != nil && rh == nil {
			bc.c.Close()
			retry, status, o := e.tryFailed(be, bc.reused, err, start, len(req.Body) > 0, upstream.Idempotent(req.Method))
			if a.Failed(be, o, retry) {
				fresh = retry == balance.Stale
				continue
			}
			return nil, &Failure{status, a.Last()}
		}
		o := balance.Outcome{Status: rh.status, Latency: time.Since(start)}
		if err != nil {
			o.Failed, o.Err = true, "backend "+be.Addr+": "+err.Error()
			e.bal.Done(be, o)
			bc.c.Close()
			return nil, &Failure{502, o.Err + " (fleet " + e.bal.Config().Fleet + ")"}
		}
		e.bal.Done(be, o)
		if !rh.connClose && rh.minor == 1 && (rh.chunked || rh.length >= 0 || resp.Status == 204 || resp.Status == 304 || req.Method == "HEAD") {
			upstream.Of(be).H1.(*pool).put(bc)
		} else {
			bc.c.Close()
		}
		return resp, nil
	}
}

// check refuses what HPACK carries but an HTTP/1.1 head cannot: a CR, LF
// or NUL in a value, or a name or method that is not a token, would let an
// HTTP/2 client write a second request into the backend connection
// (HTTP/2 to HTTP/1.1 smuggling, RFC 9113 8.2.1).
func (req *Request) check() error {
	h := head{line: []byte(req.Method + " " + req.Path + " HTTP/1.1")}
	if err := parseFirstLine(&h, true); err != nil {
		return err
	}
	if !validHost(req.Authority) {
		return errHost
	}
	for _, f := range req.Header {
		if !isToken(f[0]) {
			return errFieldName
		}
		if !validText(f[1]) {
			return errFieldValue
		}
	}
	return nil
}

// tryRoundTrip is one try. A nil head with an error means no response
// arrived.
func (e *Engine) tryRoundTrip(bc *bconn, req *Request, start time.Time) (*Response, *head, error) {
	bw := bc.bw
	bw.WriteString(req.Method + " " + req.Path + " HTTP/1.1\r\nHost: " + req.Authority + "\r\n")
	var xff string
	for _, f := range req.Header {
		switch {
		case f[0] == "host" || f[0] == "content-length" || upstream.Hop(f[0]):
		case f[0] == "x-forwarded-for":
			xff = f[1] + ", "
		default:
			bw.WriteString(f[0] + ": " + f[1] + "\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: " + xff + req.RemoteIP + "\r\n")
	if len(req.Body) > 0 || req.Method == "POST" || req.Method == "PUT" {
		bw.WriteString("Content-Length: " + strconv.Itoa(len(req.Body)) + "\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(req.Body)
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	bc.deadline = start.Add(e.cfg.ResponseHeaderTimeout)
	bc.c.SetReadDeadline(bc.deadline)
	var rh head
	if err := readResponseHead(bc, &rh, nil, false); err != nil {
		return nil, nil, err
	}
	resp := &Response{Status: rh.status}
	eachField(rh.raw[len(rh.line)+2:len(rh.raw)-2], func(name, val []byte) bool {
		if !upstream.Hop(name) && !rh.nominated(name) && !upstream.EqualFold(name, "content-length") {
			resp.Header = append(resp.Header, [2]string{strings.ToLower(string(name)), string(val)})
		}
		return true
	})
	bc.br.Discard(len(rh.raw))
	if req.Method == "HEAD" || rh.status == 204 || rh.status == 304 {
		return resp, &rh, nil
	}
	body, err := readBody(bc.br, &rh, e.cfg.MaxBodyBytes, true, func() { bc.refresh(e.cfg.ResponseHeaderTimeout) })
	if errors.Is(err, errBodyTooLarge) {
		err = errors.New("response body exceeds max-body-bytes " + strconv.Itoa(e.cfg.MaxBodyBytes))
	}
	resp.Body = body
	return resp, &rh, err
}

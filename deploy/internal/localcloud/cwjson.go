package localcloud

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CloudWatch over AWS JSON 1.0, what botocore (the AWS CLI, boto3) sends:
// POST / with Content-Type application/x-amz-json-1.0 and X-Amz-Target
// GraniteServiceVersion20100801.<Op>. CloudWatch is query-compatible, so
// errors carry X-Amzn-Query-Error with the awsQuery code as well as the
// Smithy __type.
const (
	cwTargetPrefix    = "GraniteServiceVersion20100801."
	cwJSONContentType = "application/x-amz-json-1.0"
)

type jsonProtocol struct{}

func (jsonProtocol) name() string { return "json-1.0" }

func (jsonProtocol) decoder() inputDecoder {
	return inputDecoder{typeCode: "SerializationException"}
}

func (jsonProtocol) writeOutput(w http.ResponseWriter, _ string, out any) {
	var b bytes.Buffer
	if out == nil {
		b.WriteString("{}")
	} else {
		writeJSONTree(&b, out)
	}
	writeJSONBody(w, http.StatusOK, b.Bytes())
}

func (jsonProtocol) writeError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("X-Amzn-Query-Error", e.Code+";"+faultOf(e))
	b, _ := json.Marshal(map[string]string{"__type": errorType(e), "message": e.Message})
	writeJSONBody(w, e.Status, b)
}

func writeJSONBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", cwJSONContentType)
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) serveCloudWatchJSON(w http.ResponseWriter, r *http.Request, target string) {
	p := jsonProtocol{}
	op := strings.TrimPrefix(target, cwTargetPrefix)
	if r.Method != http.MethodPost {
		p.writeError(w, apiErr(http.StatusMethodNotAllowed, "InvalidAction", "JSON 1.0 requests must be POST, not %s", r.Method))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != cwJSONContentType {
		p.writeError(w, apiErr(http.StatusUnsupportedMediaType, "InvalidAction", "Content-Type %q is not served: CloudWatch's JSON protocol is %s", r.Header.Get("Content-Type"), cwJSONContentType))
		return
	}
	body, e := readCloudWatchBody(r)
	if e != nil {
		p.writeError(w, e)
		return
	}
	var tree any
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			p.writeError(w, apiErr(http.StatusBadRequest, "SerializationException", "body is not JSON: %v", err))
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			p.writeError(w, apiErr(http.StatusBadRequest, "SerializationException", "body has data after its JSON object"))
			return
		}
		if _, ok := tree.(map[string]any); !ok {
			p.writeError(w, apiErr(http.StatusBadRequest, "SerializationException", "body must be a JSON object, not %s", describeLeaf(tree)))
			return
		}
	}
	s.runCloudWatch(w, r, p, op, tree)
}

func writeJSONTree(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case ostruct:
		writeJSONObject(b, x)
	case omap:
		writeJSONObject(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONTree(b, e)
		}
		b.WriteByte(']')
	case string:
		s, _ := json.Marshal(x)
		b.Write(s)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			// JSON has no literal for these; AWS sends them as strings.
			b.WriteString(strconv.Quote(formatFloat(x)))
			return
		}
		b.WriteString(formatFloat(x))
	case time.Time:
		// JSON 1.0 timestamps are epoch seconds.
		b.WriteString(strconv.FormatFloat(float64(x.UnixMilli())/1000, 'f', -1, 64))
	default:
		panic("localcloud: no JSON encoding for an output of this type")
	}
}

func writeJSONObject(b *bytes.Buffer, fields []ofield) {
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		b.Write(k)
		b.WriteByte(':')
		writeJSONTree(b, f.v)
	}
	b.WriteByte('}')
}

// formatFloat writes a double as AWS does: plain decimals, an exponent only
// for very large or small magnitudes, and NaN/Infinity/-Infinity by name.
func formatFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(x, 'E', -1, 64)
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

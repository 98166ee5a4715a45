package localcloud

import (
	"encoding/xml"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CloudWatch over awsQuery, what older clients send (AWS CLI 2.9, Grafana,
// older SDKs): a form with Action, Version=2010-08-01 and members such as
// MetricData.member.1.Dimensions.member.1.Name; answers are XML.
const (
	cloudwatchVersion = "2010-08-01"
	cloudwatchXMLNS   = "http://monitoring.amazonaws.com/doc/2010-08-01/"
)

type queryProtocol struct{}

func (queryProtocol) name() string { return "awsquery" }

func (queryProtocol) decoder() inputDecoder {
	return inputDecoder{text: true, typeCode: "InvalidParameterValue"}
}

func (queryProtocol) writeOutput(w http.ResponseWriter, op string, out any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	start := xml.StartElement{Name: xml.Name{Local: op + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: cloudwatchXMLNS}}}
	_ = enc.EncodeToken(start)
	if out != nil {
		writeXMLTree(enc, op+"Result", out)
	}
	writeXMLTree(enc, "ResponseMetadata", ostruct{{"RequestId", requestID()}})
	_ = enc.EncodeToken(start.End())
	_ = enc.Flush()
}

func (queryProtocol) writeError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_, _ = io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	start := xml.StartElement{Name: xml.Name{Local: "ErrorResponse"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: cloudwatchXMLNS}}}
	_ = enc.EncodeToken(start)
	writeXMLTree(enc, "Error", ostruct{{"Type", faultOf(e)}, {"Code", e.Code}, {"Message", e.Message}})
	writeXMLTree(enc, "RequestId", requestID())
	_ = enc.EncodeToken(start.End())
	_ = enc.Flush()
}

// serveCloudWatchQuery serves an awsQuery request whose form (body and URL
// query) the router has already read.
func (s *Server) serveCloudWatchQuery(w http.ResponseWriter, r *http.Request, form url.Values) {
	p := queryProtocol{}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-www-form-urlencoded" {
			p.writeError(w, apiErr(http.StatusUnsupportedMediaType, "InvalidAction", "Content-Type %q is not a CloudWatch protocol the local cloud serves: send RPC v2 CBOR to %s<Op>, JSON 1.0 with X-Amz-Target %s<Op>, or an awsQuery form", ct, cloudwatchPrefix, cwTargetPrefix))
			return
		}
	}
	if v := form.Get("Version"); v != cloudwatchVersion {
		p.writeError(w, apiErr(http.StatusBadRequest, "InvalidParameterValue", "Version %q is not served: the local cloud's CloudWatch awsQuery API is %s", v, cloudwatchVersion))
		return
	}
	action := form.Get("Action")
	if action == "" {
		p.writeError(w, apiErr(http.StatusBadRequest, "MissingAction", "The request must contain the parameter Action."))
		return
	}
	tree, err := queryTree(form)
	if err != nil {
		p.writeError(w, cwError(err))
		return
	}
	s.runCloudWatch(w, r, p, action, tree)
}

// queryTree turns flat awsQuery names (A.member.1.B) into nested maps whose
// leaves are the text values; the decoder reads lists from the member maps.
func queryTree(form url.Values) (map[string]any, error) {
	keys := make([]string, 0, len(form))
	for k := range form {
		if k != "Action" && k != "Version" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	root := map[string]any{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		node := root
		for i, part := range parts {
			if part == "" {
				return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "The parameter name %q has an empty part.", k)
			}
			if i == len(parts)-1 {
				if _, ok := node[part].(map[string]any); ok {
					return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "The parameter %s is given both as a value and as a structure or list.", k)
				}
				node[part] = form[k][0]
				break
			}
			next, ok := node[part]
			if !ok {
				next = map[string]any{}
				node[part] = next
			}
			m, ok := next.(map[string]any)
			if !ok {
				return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "The parameter %s is given both as a value and as a structure or list.", strings.Join(parts[:i+1], "."))
			}
			node = m
		}
	}
	return root, nil
}

func writeXMLTree(enc *xml.Encoder, name string, v any) {
	start := xml.StartElement{Name: xml.Name{Local: name}}
	_ = enc.EncodeToken(start)
	switch x := v.(type) {
	case ostruct:
		for _, f := range x {
			writeXMLTree(enc, f.name, f.v)
		}
	case omap:
		for _, f := range x {
			writeXMLTree(enc, "entry", ostruct{{"key", f.name}, {"value", f.v}})
		}
	case []any:
		for _, e := range x {
			writeXMLTree(enc, "member", e)
		}
	case string:
		_ = enc.EncodeToken(xml.CharData(x))
	case bool:
		_ = enc.EncodeToken(xml.CharData(strconv.FormatBool(x)))
	case int64:
		_ = enc.EncodeToken(xml.CharData(strconv.FormatInt(x, 10)))
	case float64:
		_ = enc.EncodeToken(xml.CharData(formatFloat(x)))
	case time.Time:
		_ = enc.EncodeToken(xml.CharData(x.UTC().Format("2006-01-02T15:04:05.000Z")))
	default:
		panic("localcloud: no XML encoding for an output of this type")
	}
	_ = enc.EncodeToken(start.End())
}

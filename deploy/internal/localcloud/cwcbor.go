package localcloud

import (
	"net/http"
	"time"

	// smithy-go's CBOR codec is the one aws-sdk-go-v2 itself uses on the
	// client side, so what it encodes the SDK decodes; it is already in the
	// module graph, unlike fxamacker/cbor. It always writes definite
	// lengths and reads indefinite ones, which is what a server needs.
	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch over Smithy RPC v2 CBOR, what aws-sdk-go-v2 sends:
// POST /service/GraniteServiceVersion20100801/operation/<Op>.
type cborProtocol struct{}

func (cborProtocol) name() string { return "rpc-v2-cbor" }

func (cborProtocol) decoder() inputDecoder {
	return inputDecoder{typeCode: "SerializationException"}
}

func (cborProtocol) writeOutput(w http.ResponseWriter, _ string, out any) {
	if out == nil {
		writeCBOR(w, http.StatusOK, nil)
		return
	}
	writeCBOR(w, http.StatusOK, toCBOR(out))
}

func (cborProtocol) writeError(w http.ResponseWriter, e *APIError) {
	writeCBORError(w, e)
}

func writeCBOR(w http.ResponseWriter, status int, v cbor.Value) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	if v != nil {
		_, _ = w.Write(cbor.Encode(v))
	}
}

// writeCBORError writes the modeled __type and X-Amzn-Query-Error, which
// carries the awsQuery code the SDK reports as ErrorCode().
func writeCBORError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("X-Amzn-Query-Error", e.Code+";"+faultOf(e))
	writeCBOR(w, e.Status, cbor.Map{"__type": cbor.String(errorType(e)), "message": cbor.String(e.Message)})
}

func (s *Server) serveCloudWatchCBOR(w http.ResponseWriter, r *http.Request, op string) {
	if r.Method != http.MethodPost {
		writeCBORError(w, apiErr(http.StatusMethodNotAllowed, "InvalidAction", "RPC v2 CBOR requests must be POST"))
		return
	}
	body, e := readCloudWatchBody(r)
	if e != nil {
		writeCBORError(w, e)
		return
	}
	var tree any
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		if err != nil {
			writeCBORError(w, apiErr(http.StatusBadRequest, "SerializationException", "body is not CBOR: %v", err))
			return
		}
		tree = fromCBOR(v)
	}
	s.runCloudWatch(w, r, cborProtocol{}, op, tree)
}

// fromCBOR turns a decoded CBOR value into the decoder's tree.
func fromCBOR(v cbor.Value) any {
	switch x := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = fromCBOR(e)
		}
		return m
	case cbor.List:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = fromCBOR(e)
		}
		return l
	case cbor.String:
		return string(x)
	case cbor.Uint:
		return uint64(x)
	case cbor.NegInt:
		// smithy-go's NegInt(n) is -n, and NegInt(0) wraps to -2^64.
		switch {
		case x == 0:
			return -0x1p64
		case x > 1<<63:
			return -float64(x)
		}
		return -int64(x)
	case cbor.Float32:
		return float64(x)
	case cbor.Float64:
		return float64(x)
	case cbor.Bool:
		return bool(x)
	case *cbor.Tag:
		if t, err := cbor.AsTime(x); err == nil {
			return t
		}
		return x
	case *cbor.Nil, *cbor.Undefined:
		return nil
	}
	return v
}

func toCBOR(v any) cbor.Value {
	switch x := v.(type) {
	case ostruct:
		m := cbor.Map{}
		for _, f := range x {
			m[f.name] = toCBOR(f.v)
		}
		return m
	case omap:
		m := cbor.Map{}
		for _, f := range x {
			m[f.name] = toCBOR(f.v)
		}
		return m
	case []any:
		l := cbor.List{}
		for _, e := range x {
			l = append(l, toCBOR(e))
		}
		return l
	case string:
		return cbor.String(x)
	case bool:
		return cbor.Bool(x)
	case int64:
		if x < 0 {
			return cbor.NegInt(uint64(-x))
		}
		return cbor.Uint(uint64(x))
	case float64:
		return cbor.Float64(x)
	case time.Time:
		return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(x.UnixMilli()) / 1000)}
	}
	panic("localcloud: no CBOR encoding for an output of this type")
}

package localcloud

// CloudWatch is served over three protocols (RPC v2 CBOR, JSON 1.0 and
// awsQuery) by one implementation of each operation. Each protocol turns its
// body into a generic tree; decodeInput fills the operation's Go input
// struct from that tree, checking required members, types and list bounds;
// the handler runs; encodeOutput turns its Go output struct into an ordered
// tree that each protocol writes in its own format. The Go field names are
// the Smithy member names, so the struct is the model.
//
// Field tags (`cw:"..."`, comma-separated):
//   required  the member must be present (and a string non-empty)
//   max=N     a list holds at most N members (lists without it: 100)
//   omitempty an output member is left out when it is the zero value

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultListMax bounds every input list the model leaves unbounded, so no
// list can make the local cloud allocate without limit.
const defaultListMax = 100

type fieldInfo struct {
	index     int
	name      string
	required  bool
	omitempty bool
	max       int
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fi := fieldInfo{index: i, name: f.Name, max: defaultListMax}
		for _, opt := range strings.Split(f.Tag.Get("cw"), ",") {
			switch {
			case opt == "required":
				fi.required = true
			case opt == "omitempty":
				fi.omitempty = true
			case strings.HasPrefix(opt, "max="):
				n, err := strconv.Atoi(strings.TrimPrefix(opt, "max="))
				if err != nil {
					panic("localcloud: bad cw tag on " + t.Name() + "." + f.Name)
				}
				fi.max = n
			}
		}
		out = append(out, fi)
	}
	fieldCache.Store(t, out)
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// inputDecoder fills Go input structs from a protocol's tree. The tree holds
// map[string]any, []any and leaves: string, bool, float64, int64, uint64,
// json.Number, time.Time or nil. In text mode (awsQuery) every leaf is a
// string and lists are {"member": {"1": .., "2": ..}}.
type inputDecoder struct {
	text bool
	// typeCode is the error code for a member of the wrong type:
	// SerializationException for JSON and CBOR, InvalidParameterValue for
	// awsQuery, as AWS answers.
	typeCode string
}

func missing(path string) error {
	return apiErr(http.StatusBadRequest, "MissingParameter", "The parameter %s is required.", path)
}

func (d inputDecoder) typeErr(path, want string, got any) error {
	return apiErr(http.StatusBadRequest, d.typeCode, "The value %s for parameter %s is invalid: expected %s.", describeLeaf(got), path, want)
}

func describeLeaf(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 64 {
			x = x[:64] + "..."
		}
		return strconv.Quote(x)
	case map[string]any:
		return "(a structure)"
	case []any:
		return "(a list)"
	case nil:
		return "null"
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decodeInput fills the struct dst points to from tree.
func (d inputDecoder) decodeInput(dst any, tree any) error {
	if tree == nil {
		tree = map[string]any{}
	}
	return d.decode(reflect.ValueOf(dst).Elem(), tree, "", 0)
}

func (d inputDecoder) decode(dst reflect.Value, src any, path string, max int) error {
	t := dst.Type()
	switch {
	case t == timeType:
		tm, err := d.time(src, path)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(tm))
		return nil
	case t.Kind() == reflect.Pointer:
		v := reflect.New(t.Elem())
		if err := d.decode(v.Elem(), src, path, max); err != nil {
			return err
		}
		dst.Set(v)
		return nil
	case t.Kind() == reflect.Struct:
		m, ok := src.(map[string]any)
		if !ok {
			return d.typeErr(path, "a structure", src)
		}
		for _, fi := range fieldsOf(t) {
			v, ok := m[fi.name]
			p := join(path, fi.name)
			if !ok || v == nil {
				if fi.required {
					return missing(p)
				}
				continue
			}
			f := dst.Field(fi.index)
			if err := d.decode(f, v, p, fi.max); err != nil {
				return err
			}
			if fi.required && f.Kind() == reflect.String && f.Len() == 0 {
				return missing(p)
			}
		}
		return nil
	case t.Kind() == reflect.Slice:
		items, err := d.list(src, path)
		if err != nil {
			return err
		}
		if len(items) > max {
			return apiErr(http.StatusBadRequest, "InvalidParameterValue", "The collection %s must not have more than %d members; it has %d.", path, max, len(items))
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if it == nil {
				return d.typeErr(join(path, "member."+strconv.Itoa(i+1)), "a value", nil)
			}
			if err := d.decode(s.Index(i), it, join(path, "member."+strconv.Itoa(i+1)), defaultListMax); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	case t.Kind() == reflect.String:
		s, ok := src.(string)
		if !ok {
			return d.typeErr(path, "a string", src)
		}
		dst.SetString(s)
		return nil
	case t.Kind() == reflect.Bool:
		b, err := d.bool(src, path)
		if err != nil {
			return err
		}
		dst.SetBool(b)
		return nil
	case t.Kind() == reflect.Int:
		n, err := d.int(src, path)
		if err != nil {
			return err
		}
		dst.SetInt(n)
		return nil
	case t.Kind() == reflect.Float64:
		f, err := d.float(src, path)
		if err != nil {
			return err
		}
		dst.SetFloat(f)
		return nil
	}
	panic("localcloud: no CloudWatch decoding for " + t.String())
}

// list returns the members of a list in order. awsQuery numbers them from
// 1 with no gaps; an empty list is sent as the bare name with no value.
func (d inputDecoder) list(src any, path string) ([]any, error) {
	if !d.text {
		l, ok := src.([]any)
		if !ok {
			return nil, d.typeErr(path, "a list", src)
		}
		return l, nil
	}
	if s, ok := src.(string); ok && s == "" {
		return nil, nil
	}
	m, ok := src.(map[string]any)
	if !ok {
		return nil, d.typeErr(path, "a list (name.member.N)", src)
	}
	members, ok := m["member"].(map[string]any)
	if !ok || len(m) != 1 {
		return nil, d.typeErr(path, "a list (name.member.N)", src)
	}
	out := make([]any, len(members))
	for k, v := range members {
		i, err := strconv.Atoi(k)
		if err != nil || i < 1 || i > len(members) || strconv.Itoa(i) != k {
			return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "The list %s must be numbered member.1 to member.%d without gaps; got member.%s.", path, len(members), k)
		}
		out[i-1] = v
	}
	return out, nil
}

func (d inputDecoder) float(src any, path string) (float64, error) {
	switch x := src.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f, nil
		}
	case string:
		// JSON and CBOR clients send non-finite doubles as these strings;
		// awsQuery sends every number as text.
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		if d.text {
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f, nil
			}
		}
	}
	return 0, d.typeErr(path, "a number", src)
}

func (d inputDecoder) int(src any, path string) (int64, error) {
	var n int64
	ok := false
	switch x := src.(type) {
	case int64:
		n, ok = x, true
	case uint64:
		n, ok = int64(x), x <= math.MaxInt32
	case float64:
		n, ok = int64(x), x == math.Trunc(x) && math.Abs(x) <= math.MaxInt32
	case json.Number:
		v, err := strconv.ParseInt(string(x), 10, 64)
		n, ok = v, err == nil
	case string:
		if d.text {
			v, err := strconv.ParseInt(x, 10, 64)
			n, ok = v, err == nil
		}
	}
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, d.typeErr(path, "a 32-bit integer", src)
	}
	return n, nil
}

func (d inputDecoder) bool(src any, path string) (bool, error) {
	switch x := src.(type) {
	case bool:
		return x, nil
	case string:
		if d.text {
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
	}
	return false, d.typeErr(path, "true or false", src)
}

// time reads CBOR's epoch tag (already a time.Time), JSON's epoch seconds,
// and awsQuery's ISO 8601 text (or epoch seconds, which AWS also accepts).
func (d inputDecoder) time(src any, path string) (time.Time, error) {
	epoch := func(f float64) time.Time {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	}
	switch x := src.(type) {
	case time.Time:
		return x, nil
	case float64:
		return epoch(x), nil
	case int64:
		return time.Unix(x, 0).UTC(), nil
	case uint64:
		if x <= math.MaxInt64 {
			return time.Unix(int64(x), 0).UTC(), nil
		}
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return epoch(f), nil
		}
	case string:
		if d.text {
			if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return tm.UTC(), nil
			}
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return epoch(f), nil
			}
		}
	}
	return time.Time{}, d.typeErr(path, "a timestamp", src)
}

// Output trees: ostruct keeps the model's member order (awsQuery XML is
// read in order by some clients); omap is a Smithy map, written with sorted
// keys. Leaves are string, bool, int64, float64 and time.Time; lists []any.
type ofield struct {
	name string
	v    any
}

type (
	ostruct []ofield
	omap    []ofield
)

// encodeOutput turns an output struct (or nil for operations without
// output) into an ordered tree.
func encodeOutput(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	return encodeValue(rv)
}

func encodeValue(v reflect.Value) any {
	t := v.Type()
	switch {
	case t == timeType:
		return v.Interface().(time.Time)
	case t.Kind() == reflect.Pointer:
		return encodeValue(v.Elem())
	case t.Kind() == reflect.Struct:
		out := ostruct{}
		for _, fi := range fieldsOf(t) {
			f := v.Field(fi.index)
			if (f.Kind() == reflect.Pointer || f.Kind() == reflect.Map) && f.IsNil() {
				continue
			}
			if fi.omitempty && f.IsZero() {
				continue
			}
			if fi.omitempty && f.Kind() == reflect.Slice && f.Len() == 0 {
				continue
			}
			out = append(out, ofield{fi.name, encodeValue(f)})
		}
		return out
	case t.Kind() == reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encodeValue(v.Index(i))
		}
		return out
	case t.Kind() == reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		out := omap{}
		for _, k := range keys {
			out = append(out, ofield{k, encodeValue(v.MapIndex(reflect.ValueOf(k)))})
		}
		return out
	case t.Kind() == reflect.String:
		return v.String()
	case t.Kind() == reflect.Bool:
		return v.Bool()
	case t.Kind() == reflect.Int:
		return v.Int()
	case t.Kind() == reflect.Float64:
		return v.Float()
	}
	panic("localcloud: no CloudWatch encoding for " + t.String())
}

package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrScrape wraps failures to read or parse the application's endpoint.
var ErrScrape = errors.New("scrape")

// Forward picks one metric family of the application and names it for Shoal.
type Forward struct {
	Name  string // family name at the endpoint
	Alias string // custom metric name sent upstream
}

var customName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseForward parses NAME or NAME=ALIAS as given to --metric.
func ParseForward(s string) (Forward, error) {
	name, alias, hasAlias := strings.Cut(s, "=")
	if !hasAlias {
		alias = name
	}
	if !customName.MatchString(name) {
		return Forward{}, fmt.Errorf("%w: --metric %q: name %q is not a metric name", ErrConfig, s, name)
	}
	if !customName.MatchString(alias) {
		return Forward{}, fmt.Errorf("%w: --metric %q: alias %q is not a metric name", ErrConfig, s, alias)
	}
	if _, builtin := Help(ScopeHost)[alias]; builtin {
		return Forward{}, fmt.Errorf("%w: --metric %q: alias %q is a built-in metric; choose another alias", ErrConfig, s, alias)
	}
	return Forward{Name: name, Alias: alias}, nil
}

// Scrape reads a Prometheus text (or protobuf/OpenMetrics) endpoint of the
// application and forwards chosen families as custom metrics. A gauge or
// untyped family is forwarded as the sum of its series (e.g. queue depth over
// all queues); a counter as its per-second rate, since a raw counter only
// grows and cannot drive scaling.
type Scrape struct {
	URL      string
	Forwards []Forward
	Client   *http.Client
	Timeout  time.Duration

	prevAt   time.Time
	prevCtrs map[string]float64
}

// Collect scrapes once. A family missing from the endpoint is an error that
// names it; the families found are still returned.
func (s *Scrape) Collect(now time.Time) (map[string]float64, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fams, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(s.Forwards))
	ctrs := make(map[string]float64)
	var errs []error
	dt := now.Sub(s.prevAt).Seconds()
	for _, f := range s.Forwards {
		fam, ok := fams[f.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%w %s: metric %q not found", ErrScrape, s.URL, f.Name))
			continue
		}
		v, counter, err := familyValue(fam)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w %s: metric %q: %v", ErrScrape, s.URL, f.Name, err))
			continue
		}
		if !counter {
			out[f.Alias] = v
			continue
		}
		ctrs[f.Alias] = v
		// A counter that went back means the application restarted.
		if prev, ok := s.prevCtrs[f.Alias]; ok && dt > 0 && v >= prev {
			out[f.Alias] = (v - prev) / dt
		}
	}
	s.prevAt, s.prevCtrs = now, ctrs
	return out, errors.Join(errs...)
}

func (s *Scrape) fetch(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrScrape, s.URL, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrScrape, s.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w %s: status %s", ErrScrape, s.URL, resp.Status)
	}
	fams, err := parseFamilies(io.LimitReader(resp.Body, 16<<20), expfmt.ResponseFormat(resp.Header))
	if err != nil {
		return nil, fmt.Errorf("%w %s: parse: %v", ErrScrape, s.URL, err)
	}
	return fams, nil
}

// parseFamilies reads an exposition in format, keyed by family name.
func parseFamilies(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	if format.FormatType() == expfmt.TypeProtoDelim {
		// expfmt reads delimited protobuf without a size limit: it allocates
		// what a length prefix claims (a terabyte, from eight bytes) before
		// reading any of it. r is bounded, so hold every prefix to it.
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		if err := checkDelimited(b); err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	dec := expfmt.NewDecoder(r, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			return fams, nil
		} else if err != nil {
			return nil, err
		}
		fams[mf.GetName()] = &mf
	}
}

// familyValue sums a family's series; counter says it is a counter.
func familyValue(mf *dto.MetricFamily) (sum float64, counter bool, err error) {
	for _, m := range mf.GetMetric() {
		switch mf.GetType() {
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_UNTYPED:
			sum += m.GetUntyped().GetValue()
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
			counter = true
		default:
			return 0, false, fmt.Errorf("type %s cannot be forwarded; forward a gauge or counter (e.g. the _count series)", mf.GetType())
		}
	}
	// The coordinator refuses a whole sample for one value that is not a
	// finite number >= 0, so forwarding one would drop cpu and mem too.
	if math.IsNaN(sum) || math.IsInf(sum, 0) || sum < 0 {
		return 0, false, fmt.Errorf("sum of its series is %v; only a finite number >= 0 can be forwarded", sum)
	}
	return sum, counter, nil
}

// checkDelimited checks that every length-prefixed message in b fits in it.
func checkDelimited(b []byte) error {
	for off := 0; off < len(b); {
		n, w := protowire.ConsumeVarint(b[off:])
		if w < 0 {
			return fmt.Errorf("protobuf length prefix at byte %d: %w", off, protowire.ParseError(w))
		}
		off += w
		if n > uint64(len(b)-off) {
			return fmt.Errorf("protobuf message at byte %d claims %d bytes; the body has %d left", off, n, len(b)-off)
		}
		off += int(n)
	}
	return nil
}

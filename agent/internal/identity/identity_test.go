package identity

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIMDS implements IMDSv2: a token from PUT /latest/api/token, required
// on every GET of /latest/meta-data/<path>.
type fakeIMDS struct {
	mu       sync.Mutex
	values   map[string]string
	dynamic  map[string]string // under /latest/dynamic/
	failures int               // GETs answered 500 before it works
	gets     int
	tokens   int
}

const token = "tok-123"

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		f.tokens++
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
		_, _ = io.WriteString(w, token)
		return
	}
	if r.Header.Get("X-Aws-Ec2-Metadata-Token") != token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.gets++
	if f.failures > 0 {
		f.failures--
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	v, ok := f.values[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
	if rest, dyn := strings.CutPrefix(r.URL.Path, "/latest/dynamic/"); dyn {
		v, ok = f.dynamic[rest]
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = io.WriteString(w, v)
}

func baseValues() map[string]string {
	return map[string]string{
		"instance-id":                      "i-0abc",
		"local-ipv4":                       "127.0.0.11",
		"placement/availability-zone":      "us-east-1a",
		"ami-id":                           "ami-123",
		"tags/instance/" + TagASG:          "web-asg",
		"tags/instance/" + TagCoordinators: "127.0.0.1:7001, 127.0.0.1:7002",
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestResolve(t *testing.T) {
	cases := []struct {
		name     string
		cfg      Config
		edit     func(map[string]string)
		failures int
		want     Identity
		wantErr  error
		errHas   string
		noIMDS   bool
	}{
		{name: "everything from imds", want: Identity{InstanceID: "i-0abc", PrivateIP: "127.0.0.11", AvailabilityZone: "us-east-1a",
			ImageID: "ami-123", ASG: "web-asg", Coordinators: []string{"127.0.0.1:7001", "127.0.0.1:7002"}}},
		{name: "flags win over tags", cfg: Config{Fleet: "web", Coordinators: []string{"10.0.0.1:7000"}},
			want: Identity{InstanceID: "i-0abc", PrivateIP: "127.0.0.11", AvailabilityZone: "us-east-1a",
				ImageID: "ami-123", ASG: "web-asg", Fleet: "web", Coordinators: []string{"10.0.0.1:7000"}}},
		{name: "transient failures are retried", failures: 3, want: Identity{InstanceID: "i-0abc", PrivateIP: "127.0.0.11",
			AvailabilityZone: "us-east-1a", ImageID: "ami-123", ASG: "web-asg", Coordinators: []string{"127.0.0.1:7001", "127.0.0.1:7002"}}},
		{name: "persistent failure gives up", failures: 1000, wantErr: ErrIMDS, errHas: "gave up after 4 attempts"},
		{name: "no group tag and no fleet", edit: func(m map[string]string) { delete(m, "tags/instance/"+TagASG) },
			wantErr: ErrConfig, errHas: "no fleet"},
		{name: "no coordinators anywhere", edit: func(m map[string]string) { delete(m, "tags/instance/"+TagCoordinators) },
			wantErr: ErrConfig, errHas: "no coordinators"},
		{name: "missing instance id", edit: func(m map[string]string) { delete(m, "instance-id") },
			wantErr: ErrIMDS, errHas: "instance-id: not found"},
		{name: "flags skip imds", cfg: Config{InstanceID: "i-local", Fleet: "web", Coordinators: []string{"127.0.0.1:7001"}},
			want: Identity{InstanceID: "i-local", Fleet: "web", Coordinators: []string{"127.0.0.1:7001"}}, noIMDS: true},
		{name: "instance id without fleet", cfg: Config{InstanceID: "i-local", Coordinators: []string{"x:1"}},
			wantErr: ErrConfig, errHas: "needs a fleet", noIMDS: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals := baseValues()
			if tc.edit != nil {
				tc.edit(vals)
			}
			fake := &fakeIMDS{values: vals, failures: tc.failures}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			cfg := tc.cfg
			cfg.Endpoint, cfg.Attempts, cfg.Backoff, cfg.MaxBackoff, cfg.Logger = srv.URL, 4, time.Millisecond, 4*time.Millisecond, quiet()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := Resolve(ctx, cfg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got.InstanceID != tc.want.InstanceID || got.PrivateIP != tc.want.PrivateIP || got.AvailabilityZone != tc.want.AvailabilityZone ||
				got.ImageID != tc.want.ImageID || got.ASG != tc.want.ASG || got.Fleet != tc.want.Fleet ||
				strings.Join(got.Coordinators, ",") != strings.Join(tc.want.Coordinators, ",") {
				t.Fatalf("Resolve = %+v\nwant %+v", got, tc.want)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if tc.noIMDS && fake.gets+fake.tokens > 0 {
				t.Errorf("IMDS was asked %d times; flags should have skipped it", fake.gets+fake.tokens)
			}
			if !tc.noIMDS && tc.wantErr == nil && fake.tokens == 0 {
				t.Error("no IMDSv2 token was requested")
			}
		})
	}
}

func TestResolveHonoursEnvEndpoint(t *testing.T) {
	srv := httptest.NewServer(&fakeIMDS{values: baseValues()})
	defer srv.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Logger, cfg.Attempts = quiet(), 1
	got, err := Resolve(ctx, cfg)
	if err != nil || got.InstanceID != "i-0abc" {
		t.Fatalf("Resolve = %+v, %v", got, err)
	}
}

func TestDefaultConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	cfg := DefaultConfig()
	cfg.Logger = nil
	if err := cfg.Validate(); err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "logger") {
		t.Fatalf("Validate without a logger = %v, want ErrConfig naming it", err)
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "attempts (0)") {
		t.Fatalf("zero Config: Validate = %v, want it to name attempts", err)
	}
}

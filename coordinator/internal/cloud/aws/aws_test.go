package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/time/rate"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// queryServer is a fault-injecting awsQuery (Auto Scaling) endpoint: each
// request goes to handle, which returns status and body.
type queryServer struct {
	mu     sync.Mutex
	reqs   []url.Values
	handle func(n int, form url.Values) (int, string)
}

func (s *queryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	s.reqs = append(s.reqs, form)
	n := len(s.reqs)
	s.mu.Unlock()
	status, out := s.handle(n, form)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	io.WriteString(w, out)
}

func (s *queryServer) requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.reqs...)
}

func queryError(code, msg string) string {
	return `<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>` + code +
		`</Code><Message>` + msg + `</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`
}

func queryOK(action, result string) string {
	return `<` + action + `Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><` + action + `Result>` + result +
		`</` + action + `Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></` + action + `Response>`
}

func testConfig(endpoint string) Config {
	c := DefaultConfig()
	c.Region = "us-east-1"
	c.Endpoint = endpoint
	c.MaxBackoff = 20 * time.Millisecond
	c.BaseDelay = 5 * time.Millisecond
	c.RatePerSecond = 1000
	c.Burst = 1000
	return c
}

func setCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
}

func newTestCloud(t *testing.T, s *queryServer, c func(*Config)) *Cloud {
	t.Helper()
	setCredentials(t)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL)
	if c != nil {
		c(&cfg)
	}
	cl, _, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestRetriesThrottlingAndServerErrors(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		status    int
		code      string
		wantCalls int
		wantKind  error
		wantClass cloud.ErrorClass
	}{
		{"throttled twice then ok", 2, 400, "Throttling", 3, nil, cloud.ClassNone},
		{"503 then ok", 1, 503, "ServiceUnavailable", 2, nil, cloud.ClassNone},
		{"scaling activity in progress then ok", 1, 400, "ScalingActivityInProgress", 2, nil, cloud.ClassNone},
		{"throttled past max attempts", 10, 400, "Throttling", 5, cloud.ErrThrottled, cloud.ClassRetryable},
		{"500 past max attempts", 10, 500, "InternalFailure", 5, cloud.ErrUnavailable, cloud.ClassRetryable},
		{"group not found is not retried", 10, 400, "ValidationError", 1, cloud.ErrGroupNotFound, cloud.ClassFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &queryServer{handle: func(n int, form url.Values) (int, string) {
				if n <= tt.failures {
					return tt.status, queryError(tt.code, "AutoScalingGroup name not found - AutoScalingGroup web not found")
				}
				return 200, queryOK("SetDesiredCapacity", "")
			}}
			cl := newTestCloud(t, s, nil)
			err := cl.SetDesiredCapacity(context.Background(), "web", 3)
			if got := len(s.requests()); got != tt.wantCalls {
				t.Errorf("server saw %d requests, want %d", got, tt.wantCalls)
			}
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if f := s.requests()[0]; f.Get("Action") != "SetDesiredCapacity" || f.Get("DesiredCapacity") != "3" || f.Get("HonorCooldown") != "false" {
					t.Errorf("request form = %v", f)
				}
				return
			}
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want kind %v", err, tt.wantKind)
			}
			if c := cloud.Classify(err); c != tt.wantClass {
				t.Errorf("Classify = %v, want %v", c, tt.wantClass)
			}
			var ce *cloud.Error
			if !errors.As(err, &ce) || ce.Op != OpSetDesiredCapacity || ce.Code != tt.code || ce.Status != tt.status {
				t.Errorf("cloud.Error = %+v", ce)
			}
		})
	}
}

func groupXML(name string, desired int, instances ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<member><AutoScalingGroupName>%s</AutoScalingGroupName><MinSize>1</MinSize><MaxSize>10</MaxSize><DesiredCapacity>%d</DesiredCapacity>`, name, desired)
	b.WriteString(`<AvailabilityZones><member>us-east-1a</member><member>us-east-1b</member></AvailabilityZones><VPCZoneIdentifier>subnet-a,subnet-b</VPCZoneIdentifier>`)
	b.WriteString(`<LaunchTemplate><LaunchTemplateName>web-lt</LaunchTemplateName><Version>$Latest</Version></LaunchTemplate>`)
	b.WriteString(`<SuspendedProcesses><member><ProcessName>AZRebalance</ProcessName><SuspensionReason>User</SuspensionReason></member></SuspendedProcesses>`)
	b.WriteString(`<Tags><member><Key>shoal:fleet</Key><Value>web</Value><PropagateAtLaunch>true</PropagateAtLaunch></member></Tags><Instances>`)
	for i, id := range instances {
		fmt.Fprintf(&b, `<member><InstanceId>%s</InstanceId><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>%s</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>%v</ProtectedFromScaleIn><InstanceType>t3.micro</InstanceType><LaunchTemplate><LaunchTemplateName>web-lt</LaunchTemplateName><Version>2</Version></LaunchTemplate></member>`,
			id, []string{"InService", "Terminating:Wait"}[i%2], i == 0)
	}
	b.WriteString(`</Instances><HealthCheckGracePeriod>30</HealthCheckGracePeriod></member>`)
	return b.String()
}

func TestDescribeGroupsBatchesAndPaginates(t *testing.T) {
	// 250 names: three batches (100, 100, 50); the first batch answers in
	// two pages, so four calls in all.
	names := make([]string, 250)
	for i := range names {
		names[i] = fmt.Sprintf("g%03d", i)
	}
	s := &queryServer{handle: func(n int, f url.Values) (int, string) {
		var asked []string
		for i := 1; f.Has(fmt.Sprintf("AutoScalingGroupNames.member.%d", i)); i++ {
			asked = append(asked, f.Get(fmt.Sprintf("AutoScalingGroupNames.member.%d", i)))
		}
		var groups strings.Builder
		next := ""
		switch {
		case asked[0] == "g000" && f.Get("NextToken") == "":
			for _, g := range asked[:60] {
				groups.WriteString(groupXML(g, 2, "i-1"+g, "i-2"+g))
			}
			next = "<NextToken>page2</NextToken>"
		case asked[0] == "g000":
			for _, g := range asked[60:] {
				groups.WriteString(groupXML(g, 2, "i-1"+g, "i-2"+g))
			}
		default:
			for _, g := range asked {
				groups.WriteString(groupXML(g, 2, "i-1"+g, "i-2"+g))
			}
		}
		return 200, queryOK("DescribeAutoScalingGroups", "<AutoScalingGroups>"+groups.String()+"</AutoScalingGroups>"+next)
	}}
	cl := newTestCloud(t, s, nil)
	groups, err := cl.DescribeGroups(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	// Count distinct requests: the SDK may resend one after a connection
	// error on a reused keep-alive connection, which is its retry at work,
	// not another call by Shoal.
	var reqs []url.Values
	seen := map[string]bool{}
	for _, r := range s.requests() {
		if k := r.Encode(); !seen[k] {
			seen[k] = true
			reqs = append(reqs, r)
		}
	}
	if len(reqs) != 4 {
		t.Fatalf("%d distinct calls, want 4", len(reqs))
	}
	for _, r := range reqs {
		n := 0
		for i := 1; r.Has(fmt.Sprintf("AutoScalingGroupNames.member.%d", i)); i++ {
			n++
		}
		if n > cloud.MaxGroupsPerDescribe {
			t.Errorf("a call asked for %d groups", n)
		}
		if r.Get("MaxRecords") != "100" {
			t.Errorf("MaxRecords = %q", r.Get("MaxRecords"))
		}
	}
	if len(groups) != 250 {
		t.Fatalf("%d groups, want 250", len(groups))
	}
	g := groups[0]
	want := cloud.Group{
		Name: "g000", Min: 1, Max: 10, Desired: 2,
		Instances: []cloud.Instance{
			{ID: "i-1g000", AZ: "us-east-1a", LifecycleState: "InService", Health: "Healthy", Protected: true, InstanceType: "t3.micro", LaunchTemplate: &cloud.TemplateRef{Name: "web-lt", Version: "2"}},
			{ID: "i-2g000", AZ: "us-east-1a", LifecycleState: "Terminating:Wait", Health: "Healthy", InstanceType: "t3.micro", LaunchTemplate: &cloud.TemplateRef{Name: "web-lt", Version: "2"}},
		},
		SuspendedProcesses: []string{"AZRebalance"},
		AvailabilityZones:  []string{"us-east-1a", "us-east-1b"},
		SubnetIDs:          []string{"subnet-a", "subnet-b"},
		LaunchTemplate:     &cloud.TemplateRef{Name: "web-lt", Version: "$Latest"},
		HealthCheckGrace:   30 * time.Second,
		Tags:               map[string]string{"shoal:fleet": "web"},
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("group =\n%+v\nwant\n%+v", g, want)
	}
}

func TestSharedLimiterPacesEveryAttempt(t *testing.T) {
	// A limiter with one token and no refill: the first call's first attempt
	// takes it, its retry must wait, and the caller's deadline ends the wait
	// before the second attempt reaches the server.
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	s := &queryServer{handle: func(int, url.Values) (int, string) { return 400, queryError("Throttling", "Rate exceeded") }}
	cl := newTestCloud(t, s, func(c *Config) { c.Limiter = lim })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := cl.SetDesiredCapacity(ctx, "web", 1)
	if len(s.requests()) != 1 {
		t.Fatalf("server saw %d requests, want 1 (the retry must wait on the limiter)", len(s.requests()))
	}
	if err == nil || cloud.Classify(err) != cloud.ClassRetryable || !errors.Is(err, cloud.ErrThrottled) {
		t.Fatalf("err = %v (class %v), want a retryable throttle", err, cloud.Classify(err))
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	s := &queryServer{handle: func(int, url.Values) (int, string) { return 200, queryOK("SetDesiredCapacity", "") }}
	srv := httptest.NewServer(s)
	defer srv.Close()
	setCredentials(t)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	cfg := DefaultConfig()
	cl, _, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetDesiredCapacity(context.Background(), "web", 2); err != nil {
		t.Fatal(err)
	}
	if len(s.requests()) != 1 {
		t.Fatalf("AWS_ENDPOINT_URL server saw %d requests, want 1", len(s.requests()))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default is valid", func(*Config) {}, ""},
		{"attempts", func(c *Config) { c.MaxAttempts = 0 }, "max attempts (0) must be >= 1"},
		{"backoff", func(c *Config) { c.MaxBackoff = 0 }, "max backoff (0s) must be > 0"},
		{"base above max", func(c *Config) { c.BaseDelay = time.Minute }, "base delay (1m0s) must be <= max backoff (5s)"},
		{"rate", func(c *Config) { c.RatePerSecond = 0 }, "rate per second (0) must be > 0"},
		{"rate ignored with a limiter", func(c *Config) { c.RatePerSecond = 0; c.Limiter = rate.NewLimiter(1, 1) }, ""},
		{"burst", func(c *Config) { c.Burst = 0 }, "burst (0) must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		msg    string
		want   error
		class  cloud.ErrorClass
	}{
		{"autoscaling throttling", 400, "Throttling", "Rate exceeded", cloud.ErrThrottled, cloud.ClassRetryable},
		{"ec2 throttling", 503, "RequestLimitExceeded", "Request limit exceeded.", cloud.ErrThrottled, cloud.ClassRetryable},
		{"group not found", 400, "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup web not found", cloud.ErrGroupNotFound, cloud.ClassFatal},
		{"instance not in a group", 400, "ValidationError", "Instance Id not found - No managed instance found for instance ID: i-1", cloud.ErrInstanceNotFound, cloud.ClassFatal},
		{"lifecycle token gone", 400, "ValidationError", "No active Lifecycle Action found with token abc", cloud.ErrLifecycleActionNotFound, cloud.ClassFatal},
		{"other validation", 400, "ValidationError", "New SetDesiredCapacity value 11 is above max value 10", cloud.ErrValidation, cloud.ClassFatal},
		{"ec2 instance not found", 400, "InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist", cloud.ErrInstanceNotFound, cloud.ClassFatal},
		{"launch template exists", 400, "InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.", cloud.ErrAlreadyExists, cloud.ClassFatal},
		{"no capacity", 500, "InsufficientInstanceCapacity", "none left", cloud.ErrInsufficientCapacity, cloud.ClassRetryable},
		{"access denied", 403, "AccessDenied", "not allowed", cloud.ErrAccessDenied, cloud.ClassFatal},
		{"unknown 5xx", 502, "BadGatewayish", "?", nil, cloud.ClassRetryable},
		{"unknown 4xx", 400, "Strange", "?", nil, cloud.ClassFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdkErr := &smithy.OperationError{ServiceID: "Auto Scaling", OperationName: "X", Err: &awshttp.ResponseError{
				ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: tt.status}},
					Err: &smithy.GenericAPIError{Code: tt.code, Message: tt.msg}},
			}}
			err := Translate("autoscaling:X", sdkErr)
			var ce *cloud.Error
			if !errors.As(err, &ce) {
				t.Fatalf("translate returned %T", err)
			}
			if ce.Kind != tt.want || ce.Status != tt.status || ce.Code != tt.code {
				t.Errorf("got kind %v status %d code %q", ce.Kind, ce.Status, ce.Code)
			}
			if c := cloud.Classify(err); c != tt.class {
				t.Errorf("class = %v, want %v", c, tt.class)
			}
		})
	}
	if Translate("x", nil) != nil {
		t.Error("Translate(nil) != nil")
	}
}

// TestOperationsMatchCalls drives every method through real SDK clients and
// records the operation each one sends (a middleware stops the request before
// it leaves), so MethodOperations, and the lists built from it, cannot miss or
// invent an operation.
func TestOperationsMatchCalls(t *testing.T) {
	setCredentials(t)
	cfg, err := LoadConfig(context.Background(), testConfig("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	errStop := errors.New("stop")
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			mu.Lock()
			seen = append(seen, IAMAction(middleware.GetServiceID(ctx), middleware.GetOperationName(ctx)))
			mu.Unlock()
			return middleware.InitializeOutput{}, middleware.Metadata{}, errStop
		}), middleware.Before)
	})
	c := New(cfg)
	ctx := context.Background()
	lt := cloud.TemplateRef{Name: "lt"}
	calls := map[string]func() error{
		"DescribeGroups":        func() error { _, err := c.DescribeGroups(ctx, []string{"a"}); return err },
		"SetDesiredCapacity":    func() error { return c.SetDesiredCapacity(ctx, "a", 1) },
		"TerminateInstance":     func() error { _, err := c.TerminateInstance(ctx, "i-1", true); return err },
		"SetInstanceProtection": func() error { return c.SetInstanceProtection(ctx, "a", []string{"i-1"}, true) },
		"ActiveInstanceRefresh": func() error { _, err := c.ActiveInstanceRefresh(ctx, "a"); return err },
		"DescribeScalingActivities": func() error {
			_, err := c.DescribeScalingActivities(ctx, "a", 10)
			return err
		},
		"PutLifecycleHook": func() error {
			return c.PutLifecycleHook(ctx, cloud.LifecycleHook{Name: "h", Group: "a", Transition: cloud.TransitionTerminating})
		},
		"DescribeLifecycleHooks": func() error { _, err := c.DescribeLifecycleHooks(ctx, "a"); return err },
		"DescribeWarmPool":       func() error { _, err := c.DescribeWarmPool(ctx, "a"); return err },
		"PutWarmPool": func() error {
			return c.PutWarmPool(ctx, cloud.WarmPoolSpec{Group: "a", MinSize: 1, PoolState: "Stopped"})
		},
		"CompleteLifecycleAction": func() error {
			return c.CompleteLifecycleAction(ctx, cloud.LifecycleAction{Group: "a", Hook: "h", InstanceID: "i-1"}, cloud.ResultContinue)
		},
		"RecordLifecycleActionHeartbeat": func() error {
			return c.RecordLifecycleActionHeartbeat(ctx, cloud.LifecycleAction{Group: "a", Hook: "h", InstanceID: "i-1"})
		},
		"CreateGroup":        func() error { return c.CreateGroup(ctx, cloud.GroupSpec{Name: "a", Max: 1, LaunchTemplate: lt}) },
		"UpdateGroup":        func() error { return c.UpdateGroup(ctx, cloud.GroupUpdate{Name: "a", LaunchTemplate: &lt}) },
		"RunInstances":       func() error { _, err := c.RunInstances(ctx, cloud.RunSpec{ImageID: "ami-1"}); return err },
		"DescribeInstances":  func() error { _, err := c.DescribeInstances(ctx, []string{"i-1"}); return err },
		"TerminateInstances": func() error { return c.TerminateInstances(ctx, []string{"i-1"}) },
		"CreateImage": func() error {
			_, err := c.CreateImage(ctx, cloud.ImageSpec{InstanceID: "i-1", Name: "n"})
			return err
		},
		"DescribeImages": func() error { _, err := c.DescribeImages(ctx, cloud.ImageQuery{Names: []string{"n"}}); return err },
		"CreateLaunchTemplate": func() error {
			_, err := c.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "lt"})
			return err
		},
		"CreateLaunchTemplateVersion": func() error {
			_, err := c.CreateLaunchTemplateVersion(ctx, "lt", cloud.LaunchTemplateSpec{})
			return err
		},
		"DescribeLaunchTemplates": func() error { _, err := c.DescribeLaunchTemplates(ctx, []string{"lt"}); return err },
		"DescribeSubnets":         func() error { _, err := c.DescribeSubnets(ctx, cloud.SubnetQuery{}); return err },
		"DeleteGroup":             func() error { return c.DeleteGroup(ctx, "a") },
		"DeleteLaunchTemplate":    func() error { return c.DeleteLaunchTemplate(ctx, "lt") },
		"DeregisterImage":         func() error { return c.DeregisterImage(ctx, "ami-1") },
		"DeleteSnapshot":          func() error { return c.DeleteSnapshot(ctx, "snap-1") },
	}
	methodsOf := func(iface any) []string {
		typ := reflect.TypeOf(iface).Elem()
		var out []string
		for i := range typ.NumMethod() {
			out = append(out, typ.Method(i).Name)
		}
		return out
	}
	opsOf := func(methods []string) []string {
		var out []string
		for _, m := range methods {
			out = append(out, MethodOperations[m])
		}
		sort.Strings(out)
		return out
	}
	// The scaler's warm-pool reads (scaler.Config.WarmPools) are called from
	// inside the coordinator as cloud.Scaling's methods are.
	scaling := append(methodsOf((*cloud.Scaling)(nil)), methodsOf((*cloud.WarmPools)(nil))...)
	bootstrapOps := append(methodsOf((*cloud.Bootstrap)(nil)), "PutWarmPool")
	all := methodsOf((*cloud.Cloud)(nil))
	for _, m := range append(methodsOf((*cloud.Teardown)(nil)), methodsOf((*cloud.WarmPoolBootstrap)(nil))...) {
		if !slices.Contains(all, m) {
			all = append(all, m)
		}
	}
	if len(calls) != len(all) || len(MethodOperations) != len(all) {
		t.Fatalf("cloud.Cloud, cloud.Teardown and cloud.WarmPoolBootstrap have %d methods; the test drives %d and MethodOperations maps %d", len(all), len(calls), len(MethodOperations))
	}
	for _, m := range all {
		call, ok := calls[m]
		if !ok {
			t.Fatalf("the test does not drive %s", m)
		}
		mu.Lock()
		seen = nil
		mu.Unlock()
		if err := call(); !errors.Is(err, errStop) {
			t.Fatalf("%s: err = %v, want the recorder's stop", m, err)
		}
		mu.Lock()
		got := fmt.Sprint(seen)
		mu.Unlock()
		if want := fmt.Sprint([]string{MethodOperations[m]}); got != want {
			t.Errorf("%s called %s; MethodOperations says %s", m, got, want)
		}
	}
	sorted := func(ops []string) []string { ops = append([]string(nil), ops...); sort.Strings(ops); return ops }
	if got, want := sorted(ScalingOperations()), opsOf(scaling); !reflect.DeepEqual(got, want) {
		t.Errorf("ScalingOperations() = %v, cloud.Scaling's and cloud.WarmPools' methods call %v", got, want)
	}
	if got, want := sorted(BootstrapOperations()), opsOf(bootstrapOps); !reflect.DeepEqual(got, want) {
		t.Errorf("BootstrapOperations() = %v, cloud.Bootstrap's methods call %v", got, want)
	}
	if got, want := sorted(TeardownOperations()), opsOf(methodsOf((*cloud.Teardown)(nil))); !reflect.DeepEqual(got, want) {
		t.Errorf("TeardownOperations() = %v, cloud.Teardown's methods call %v", got, want)
	}
	if got, want := Operations(), opsOf(all); !reflect.DeepEqual(got, want) {
		t.Errorf("Operations() = %v, the methods call %v", got, want)
	}
}

// TestLimiterSharedAcrossServices: clients built from one LoadConfig share
// its limiter, so CloudWatch calls and Auto Scaling calls draw on one budget.
func TestLimiterSharedAcrossServices(t *testing.T) {
	s := &queryServer{handle: func(int, url.Values) (int, string) { return 200, queryOK("SetDesiredCapacity", "") }}
	srv := httptest.NewServer(s)
	defer srv.Close()
	setCredentials(t)
	c := testConfig(srv.URL)
	c.Limiter = rate.NewLimiter(rate.Every(time.Hour), 1)
	cfg, err := LoadConfig(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := New(cfg).SetDesiredCapacity(context.Background(), "web", 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cloudwatch.NewFromConfig(cfg).DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("CloudWatch call err = %v, want it held by the shared limiter", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("server saw %d requests, want only the Auto Scaling one", n)
	}
}

func TestActiveInstanceRefresh(t *testing.T) {
	refresh := func(id, status string) string {
		return `<member><InstanceRefreshId>` + id + `</InstanceRefreshId><AutoScalingGroupName>web</AutoScalingGroupName><Status>` + status +
			`</Status><StartTime>2026-11-30T06:00:00Z</StartTime></member>`
	}
	tests := []struct {
		name    string
		members string
		want    string
	}{
		{"none", "", ""},
		{"only finished ones", refresh("r-2", "Successful") + refresh("r-1", "Cancelled"), ""},
		{"one in progress", refresh("r-3", "InProgress") + refresh("r-2", "Successful"), "r-3 InProgress"},
		{"baking counts", refresh("r-4", "Baking"), "r-4 Baking"},
		{"rolling back counts", refresh("r-5", "RollbackInProgress"), "r-5 RollbackInProgress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &queryServer{handle: func(_ int, f url.Values) (int, string) {
				if f.Get("Action") != "DescribeInstanceRefreshes" || f.Get("AutoScalingGroupName") != "web" {
					return 400, queryError("ValidationError", "unexpected "+f.Encode())
				}
				return 200, queryOK("DescribeInstanceRefreshes", "<InstanceRefreshes>"+tt.members+"</InstanceRefreshes>")
			}}
			cl := newTestCloud(t, s, nil)
			r, err := cl.ActiveInstanceRefresh(context.Background(), "web")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if r != nil {
				got = r.ID + " " + r.Status
				if !r.Start.Equal(time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)) {
					t.Errorf("start = %v", r.Start)
				}
			}
			if got != tt.want {
				t.Fatalf("ActiveInstanceRefresh = %q, want %q", got, tt.want)
			}
		})
	}
}

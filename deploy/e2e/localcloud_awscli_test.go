//go:build multiprocess

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The lab of deploy/README-localcloud.md ("The lab with the AWS CLI"), run
// with AWS's own clients rather than Shoal's: Debian's AWS CLI 2.9 sends
// CloudWatch as awsQuery, pip's AWS CLI 1.x (botocore 1.4x) as JSON 1.0.
// aws-sdk-go-v2's RPC v2 CBOR is covered by the localcloud package tests.

// cliClient is one AWS CLI and the CloudWatch protocol it must send.
type cliClient struct {
	name     string
	argv     []string // the command, before the AWS arguments
	protocol string   // as the local cloud logs it
	ctype    string   // the Content-Type the local cloud must have seen
	proxy    string   // the trap every non-loopback request would go to
}

// netTrap is an HTTP(S) proxy address given to the CLIs, with only
// loopback exempt: a request to anywhere but the local cloud would connect
// here instead of to the network, and the test fails if anything did.
type netTrap struct {
	addr  string
	conns atomic.Int32
}

func startNetTrap(t *testing.T) *netTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nt := &netTrap{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nt.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		if n := nt.conns.Load(); n > 0 {
			t.Errorf("the AWS CLIs tried to reach the network %d times (through the trap proxy %s)", n, nt.addr)
		}
	})
	return nt
}

// findCLI returns the client, or skips (fails under CI=true) when the
// machine does not have it.
func findCLI(t *testing.T, protocol string) cliClient {
	t.Helper()
	missing := func(format string, args ...any) cliClient {
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: every AWS CLI the test needs must be installed; .ci/run installs them)", msg)
		}
		t.Skipf("%s; skipping", msg)
		return cliClient{}
	}
	switch protocol {
	case "awsquery":
		// Debian's package; .ci/run installs it with apt when missing.
		const p = "/usr/bin/aws"
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "aws-cli/2.") {
			return missing("Debian's AWS CLI 2.x (%s, apt package awscli) is not usable: %v %s", p, err, bytes.TrimSpace(out))
		}
		return cliClient{name: strings.Fields(string(out))[0] + " (Debian)", argv: []string{p}, protocol: "awsquery", ctype: "application/x-www-form-urlencoded"}
	default:
		// pip's AWS CLI 1.x. Its interpreter is resolved once so the CLI
		// runs without the pyenv shim, which needs the real HOME.
		py, err := exec.LookPath("python3")
		if err != nil {
			return missing("python3 is not on PATH: %v", err)
		}
		exe, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return missing("python3: %v", err)
		}
		argv := []string{strings.TrimSpace(string(exe)), "-m", "awscli"}
		out, err := exec.Command(argv[0], append(argv[1:], "--version")...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "aws-cli/1.") {
			return missing("pip's AWS CLI 1.x (python3 -m awscli) is not usable: %v %s", err, bytes.TrimSpace(out))
		}
		f := strings.Fields(string(out))
		return cliClient{name: f[0] + " " + f[len(f)-1], argv: argv, protocol: "json-1.0", ctype: "application/x-amz-json-1.0"}
	}
}

// cliCloud is a shoal-localcloud process whose debug log goes to a file:
// the process writes it before answering, so a request's log line is there
// once the client has its answer.
type cliCloud struct {
	url string
	log string
}

func startCLICloud(t *testing.T) *cliCloud {
	t.Helper()
	dir := os.Getenv("SHOAL_BIN")
	if dir == "" {
		t.Skip("SHOAL_BIN is not set: run `make test-e2e` (it builds bin/ and sets it)")
	}
	bin, err := filepath.Abs(filepath.Join(dir, "shoal-localcloud"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(t.TempDir(), "localcloud.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", addr, "--boot-delay", "100ms", "--terminate-grace", "500ms", "--instance-ip-prefix", "127.0.81", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() {
		// SIGTERM stops the instances' process groups too; SIGKILL is the
		// fallback should it hang (the parent-death signal still stops them).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("shoal-localcloud log:\n%s", b)
		}
	})
	lc := &cliCloud{url: "http://" + addr, log: logPath}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(lc.url + "/_localcloud/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return lc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("shoal-localcloud not healthy within 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (lc *cliCloud) hook(t *testing.T, method, path string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, lc.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
	return out
}

func (lc *cliCloud) now(t *testing.T) time.Time {
	t.Helper()
	now, err := time.Parse(time.RFC3339Nano, lc.hook(t, http.MethodGet, "/_localcloud/clock")["now"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return now
}

var cwRequestLine = regexp.MustCompile(`msg="cloudwatch request" protocol=(\S+) operation=(\S+) contentType=("[^"]*"|\S*) target=("[^"]*"|\S*) contentEncoding=(\S*)`)

// cwRequests returns "protocol operation content-type target encoding" for every CloudWatch
// request logged from byte offset from on, and the new offset.
func (lc *cliCloud) cwRequests(t *testing.T, from int) ([]string, int) {
	t.Helper()
	b, err := os.ReadFile(lc.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b[from:]))
	for sc.Scan() {
		if m := cwRequestLine.FindStringSubmatch(sc.Text()); m != nil {
			ct := strings.Trim(m[3], `"`)
			if i := strings.IndexByte(ct, ';'); i >= 0 {
				ct = ct[:i]
			}
			out = append(out, m[1]+" "+m[2]+" "+ct+" "+strings.Trim(m[4], `"`)+" "+strings.Trim(m[5], `"`))
		}
	}
	return out, len(b)
}

// aws runs one CLI command against the local cloud and returns its parsed
// JSON output (nil for commands that print nothing). The environment
// leaves the CLI nothing but the loopback endpoint: no config files, no
// instance metadata, one attempt per call, and the trap as the proxy for
// everything that is not loopback.
func (c cliClient) aws(t *testing.T, lc *cliCloud, wantErr string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append(append([]string{}, c.argv[1:]...), "--endpoint-url", lc.url, "--output", "json"), args...)
	cmd := exec.CommandContext(ctx, c.argv[0], argv...)
	home := t.TempDir()
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
		"HTTP_PROXY=http://" + c.proxy, "HTTPS_PROXY=http://" + c.proxy, "http_proxy=http://" + c.proxy, "https_proxy=http://" + c.proxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if wantErr != "" {
		if err == nil || !strings.Contains(stderr.String(), "("+wantErr+")") {
			t.Fatalf("%s %v: want error %s, got %v, stderr %s", c.name, args, wantErr, err, stderr.String())
		}
		return nil
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", c.name, args, err, stderr.String())
	}
	if len(bytes.TrimSpace(stdout.Bytes())) == 0 {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%s %v: output is not JSON: %v\n%s", c.name, args, err, stdout.String())
	}
	return out
}

// jq walks a decoded JSON value by keys and list indices.
func jq(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestLocalcloudAWSCLILab(t *testing.T) {
	// Each part has its own local cloud (the CloudWatch parts move its
	// clock), so the three run in parallel.
	parts := []struct {
		name, protocol string
		lab            func(*testing.T, cliClient, *cliCloud)
	}{
		{"ec2-autoscaling", "awsquery", ec2Lab},
		{"cloudwatch-awsquery", "awsquery", cloudWatchLab},
		{"cloudwatch-json", "json-1.0", cloudWatchLab},
		{"sts", "awsquery", stsLab},
	}
	trap := startNetTrap(t)
	for _, p := range parts {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cli := findCLI(t, p.protocol)
			cli.proxy = trap.addr
			t.Logf("client: %s", cli.name)
			p.lab(t, cli, startCLICloud(t))
		})
	}
}

// stsLab: the caller's account is the one the local cloud puts in identity
// documents (its default, 123456789012), as a coordinator's default
// --iid-accounts learns it.
func stsLab(t *testing.T, cli cliClient, lc *cliCloud) {
	who := cli.aws(t, lc, "", "sts", "get-caller-identity")
	if jq(who, "Account") != "123456789012" || jq(who, "Arn") != "arn:aws:iam::123456789012:user/localcloud" || jq(who, "UserId") == nil {
		t.Fatalf("sts get-caller-identity: %v", who)
	}
}

// ec2Lab: a golden instance, its image, a launch template and a group over
// two subnets.
func ec2Lab(t *testing.T, cli cliClient, lc *cliCloud) {
	run := cli.aws(t, lc, "", "ec2", "run-instances", "--image-id", "ami-localbase", "--instance-type", "t3.micro", "--count", "1",
		"--user-data", "exec sleep 300", "--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=golden}]")
	id, _ := jq(run, "Instances", 0, "InstanceId").(string)
	if !strings.HasPrefix(id, "i-") {
		t.Fatalf("run-instances: no instance id in %v", run)
	}
	// Boot it now rather than after the boot delay.
	lc.hook(t, http.MethodPost, "/_localcloud/clock?advance=1s")
	img := cli.aws(t, lc, "", "ec2", "create-image", "--instance-id", id, "--name", "golden")
	ami, _ := jq(img, "ImageId").(string)
	if !strings.HasPrefix(ami, "ami-") {
		t.Fatalf("create-image: %v", img)
	}
	lt := cli.aws(t, lc, "", "ec2", "create-launch-template", "--launch-template-name", "web",
		"--launch-template-data", `{"ImageId":"`+ami+`","InstanceType":"t3.micro"}`)
	if jq(lt, "LaunchTemplate", "LaunchTemplateName") != "web" {
		t.Fatalf("create-launch-template: %v", lt)
	}
	sn := cli.aws(t, lc, "", "ec2", "describe-subnets")
	a, _ := jq(sn, "Subnets", 0, "SubnetId").(string)
	b, _ := jq(sn, "Subnets", 1, "SubnetId").(string)
	if a == "" || b == "" {
		t.Fatalf("describe-subnets: want two subnets, got %v", sn)
	}
	cli.aws(t, lc, "", "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "web",
		"--launch-template", "LaunchTemplateName=web", "--min-size", "2", "--max-size", "4", "--desired-capacity", "2",
		"--vpc-zone-identifier", a+","+b)
	lc.hook(t, http.MethodPost, "/_localcloud/clock?advance=1s")
	groups := cli.aws(t, lc, "", "autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "web")
	insts, _ := jq(groups, "AutoScalingGroups", 0, "Instances").([]any)
	zones := map[string]bool{}
	for _, in := range insts {
		zone, _ := jq(in, "AvailabilityZone").(string)
		zones[zone] = true
		if jq(in, "LaunchTemplate", "LaunchTemplateName") != "web" {
			t.Errorf("group instance not from the launch template: %v", in)
		}
	}
	if len(insts) != 2 || len(zones) != 2 {
		t.Fatalf("describe-auto-scaling-groups: want 2 instances in 2 zones, got %v", groups)
	}
}

// cloudWatchLab: metrics in, statistics and data out, an alarm driven into
// ALARM on the local cloud's clock, its history, and its deletion. Each
// call must have reached the local cloud over the client's protocol.
func cloudWatchLab(t *testing.T, cli cliClient, lc *cliCloud) {
	_, offset := lc.cwRequests(t, 0)
	// T is the start of the cloud's current minute: one datum in it, one
	// in the next (CloudWatch takes data up to two hours ahead), then the
	// clock is set past both so the alarm sees two complete periods.
	T := lc.now(t).Truncate(time.Minute)
	ts := func(d time.Duration) string { return T.Add(d).UTC().Format(time.RFC3339) }
	dims := `[{"Name":"AutoScalingGroupName","Value":"web"}]`
	// 200 more datums make the body larger than 10 KiB, above which botocore
	// gzips PutMetricData for JSON 1.0 (requestCompression).
	filler := strings.Repeat(`,{"MetricName":"Filler","Dimensions":`+dims+`,"Value":1,"Unit":"Count"}`, 200)
	cli.aws(t, lc, "", "cloudwatch", "put-metric-data", "--namespace", "Lab", "--metric-data",
		`[{"MetricName":"Latency","Dimensions":`+dims+`,"Timestamp":"`+ts(time.Second)+`","Values":[60,90],"Counts":[1,2],"Unit":"Milliseconds"}`+filler+`]`)
	cli.aws(t, lc, "", "cloudwatch", "put-metric-data", "--namespace", "Lab", "--metric-data",
		`[{"MetricName":"Latency","Dimensions":`+dims+`,"Timestamp":"`+ts(61*time.Second)+`","StatisticValues":{"SampleCount":4,"Sum":400,"Minimum":60,"Maximum":150},"Unit":"Milliseconds"}]`)

	lm := cli.aws(t, lc, "", "cloudwatch", "list-metrics", "--namespace", "Lab", "--metric-name", "Latency")
	if jq(lm, "Metrics", 0, "MetricName") != "Latency" || jq(lm, "Metrics", 0, "Dimensions", 0, "Value") != "web" || jq(lm, "Metrics", 1) != nil {
		t.Fatalf("list-metrics: %v", lm)
	}

	st := cli.aws(t, lc, "", "cloudwatch", "get-metric-statistics", "--namespace", "Lab", "--metric-name", "Latency",
		"--dimensions", "Name=AutoScalingGroupName,Value=web", "--start-time", ts(-5*time.Minute), "--end-time", ts(3*time.Minute),
		"--period", "60", "--statistics", "Average", "Maximum", "SampleCount")
	dps, _ := jq(st, "Datapoints").([]any)
	var got []string
	for _, dp := range dps {
		got = append(got, fmt.Sprintf("avg=%v max=%v n=%v unit=%v", jq(dp, "Average"), jq(dp, "Maximum"), jq(dp, "SampleCount"), jq(dp, "Unit")))
	}
	sort.Strings(got)
	// Minute one: 60 once and 90 twice; minute two: the statistic set.
	if want := "avg=100 max=150 n=4 unit=Milliseconds,avg=80 max=90 n=3 unit=Milliseconds"; strings.Join(got, ",") != want {
		t.Fatalf("get-metric-statistics datapoints = %v, want %s", got, want)
	}

	md := cli.aws(t, lc, "", "cloudwatch", "get-metric-data", "--start-time", ts(-5*time.Minute), "--end-time", ts(3*time.Minute), "--scan-by", "TimestampAscending",
		"--metric-data-queries", `[{"Id":"sum","MetricStat":{"Metric":{"Namespace":"Lab","MetricName":"Latency","Dimensions":`+dims+`},"Period":60,"Stat":"Sum"}}]`)
	if v := fmt.Sprint(jq(md, "MetricDataResults", 0, "Values")); v != "[240 400]" || jq(md, "MetricDataResults", 0, "StatusCode") != "Complete" {
		t.Fatalf("get-metric-data: values %s in %v", v, md)
	}

	alarm := "lab-latency-high"
	cli.aws(t, lc, "InvalidParameterValue", "cloudwatch", "put-metric-alarm", "--alarm-name", alarm, "--namespace", "Lab", "--metric-name", "Latency",
		"--dimensions", "Name=AutoScalingGroupName,Value=web", "--statistic", "Average", "--period", "45", "--evaluation-periods", "2",
		"--threshold", "50", "--comparison-operator", "GreaterThanThreshold")
	cli.aws(t, lc, "", "cloudwatch", "put-metric-alarm", "--alarm-name", alarm, "--namespace", "Lab", "--metric-name", "Latency",
		"--dimensions", "Name=AutoScalingGroupName,Value=web", "--statistic", "Average", "--period", "60", "--evaluation-periods", "2",
		"--threshold", "50", "--comparison-operator", "GreaterThanThreshold")
	lc.hook(t, http.MethodPost, "/_localcloud/clock?set="+T.Add(2*time.Minute+5*time.Second).Format(time.RFC3339))
	da := cli.aws(t, lc, "", "cloudwatch", "describe-alarms", "--alarm-names", alarm)
	if jq(da, "MetricAlarms", 0, "StateValue") != "ALARM" {
		t.Fatalf("describe-alarms after the clock passed two breaching minutes: %v", da)
	}
	if r, _ := jq(da, "MetricAlarms", 0, "StateReason").(string); !strings.HasPrefix(r, "Threshold Crossed: 2 out of the last 2 datapoints") {
		t.Fatalf("state reason %q", r)
	}

	h := cli.aws(t, lc, "", "cloudwatch", "describe-alarm-history", "--alarm-name", alarm, "--history-item-type", "StateUpdate")
	items, _ := jq(h, "AlarmHistoryItems").([]any)
	found := false
	for _, it := range items {
		if strings.HasSuffix(fmt.Sprint(jq(it, "HistorySummary")), "to ALARM") {
			found = true
		}
	}
	if !found {
		t.Fatalf("describe-alarm-history: no transition to ALARM in %v", h)
	}

	cli.aws(t, lc, "", "cloudwatch", "delete-alarms", "--alarm-names", alarm)
	cli.aws(t, lc, "ResourceNotFound", "cloudwatch", "delete-alarms", "--alarm-names", alarm)

	// Every call above reached the local cloud over the client's protocol.
	seen, _ := lc.cwRequests(t, offset)
	ops := []string{"PutMetricData", "PutMetricData", "ListMetrics", "GetMetricStatistics", "GetMetricData", "PutMetricAlarm", "PutMetricAlarm",
		"DescribeAlarms", "DescribeAlarmHistory", "DeleteAlarms", "DeleteAlarms"}
	var want []string
	for i, op := range ops {
		target, encoding := "", ""
		if cli.protocol == "json-1.0" {
			target = "GraniteServiceVersion20100801." + op
			if i == 0 {
				encoding = "gzip"
			}
		}
		want = append(want, cli.protocol+" "+op+" "+cli.ctype+" "+target+" "+encoding)
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: the local cloud saw\n%s\nwant\n%s", cli.name, strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

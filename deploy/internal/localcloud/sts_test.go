package localcloud

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestSTSGetCallerIdentity(t *testing.T) {
	tc := startCloud(t, func(c *Config) { c.AccountID = "210987654321" })
	cases := []struct {
		name    string
		key     string
		wantArn string
		wantID  string
	}{
		{"long-term key", "AKIDLOCALCLOUDTEST", "arn:aws:iam::210987654321:user/localcloud", localUserID},
		{"instance role credentials", "ASIA0123456789ABCDEF", "arn:aws:sts::210987654321:assumed-role/" + InstanceRole + "/localcloud-instance", localRoleID + ":localcloud-instance"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tc.cfg.Copy()
			cfg.Credentials = credentials.NewStaticCredentialsProvider(c.key, "secret", "token")
			out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Account) != "210987654321" || aws.ToString(out.Arn) != c.wantArn || aws.ToString(out.UserId) != c.wantID {
				t.Fatalf("GetCallerIdentity = %s %s %s, want 210987654321 %s %s", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId), c.wantArn, c.wantID)
			}
		})
	}
}

func TestSTSRefusals(t *testing.T) {
	tc := startCloud(t, nil)
	post := func(form url.Values, signed bool) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, tc.srv.URL()+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signed {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261207/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	cases := []struct {
		name     string
		form     url.Values
		signed   bool
		status   int
		contains string
	}{
		{"unsigned", url.Values{"Action": {"GetCallerIdentity"}, "Version": {stsVersion}}, false, http.StatusForbidden, "MissingAuthenticationToken"},
		{"other action", url.Values{"Action": {"AssumeRole"}, "Version": {stsVersion}}, true, http.StatusBadRequest, "InvalidAction"},
		{"raw awsQuery request", url.Values{"Action": {"GetCallerIdentity"}, "Version": {stsVersion}}, true, http.StatusOK, "<Account>123456789012</Account>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := post(c.form, c.signed)
			if status != c.status || !strings.Contains(body, c.contains) {
				t.Fatalf("got %d %s, want %d containing %q", status, body, c.status, c.contains)
			}
			if !strings.Contains(body, stsXMLNS) {
				t.Fatalf("body %s lacks the STS namespace", body)
			}
		})
	}
}

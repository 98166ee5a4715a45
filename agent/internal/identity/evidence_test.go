package identity

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// ec2Document is laid out as EC2 lays it out; the test checks it comes
// back byte for byte, spaces and all.
const ec2Document = `{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-123",
  "instanceId" : "i-0abc",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "2026-12-07T10:11:12Z",
  "privateIp" : "127.0.0.11",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}`

const ec2Signature = "dExamplesjNQhhJan7pORLpLSr7lJEF4V2DhKGlyoYVBoUYrY9njyBCmhEayaGrhtS/AWY+LPx\nlVSQURF5n0gwPNCuO6ICT0fNrm5IH7w9ydyaexamplejJw8XvWPxbuRkcN0TAA1p4RtCAqm4ms\nx2oALjWSCBExample=\n"

func TestFetchEvidence(t *testing.T) {
	cases := []struct {
		name     string
		dynamic  map[string]string
		failures int
		cfg      Config
		wantErr  error
		errHas   string
	}{
		{name: "exact bytes", dynamic: map[string]string{PathDocument: ec2Document, PathSignature: ec2Signature}},
		{name: "transient failures are retried", failures: 2, dynamic: map[string]string{PathDocument: ec2Document, PathSignature: ec2Signature}},
		{name: "no signature is not retried", dynamic: map[string]string{PathDocument: ec2Document}, wantErr: ErrNoEvidence, errHas: "signature: not found"},
		{name: "no document", dynamic: map[string]string{PathSignature: ec2Signature}, wantErr: ErrNoEvidence, errHas: "document: not found"},
		{name: "oversized document", dynamic: map[string]string{PathDocument: ec2Document + strings.Repeat(" ", MaxEvidenceBytes), PathSignature: ec2Signature},
			wantErr: ErrIMDS, errHas: "larger than 16384 bytes"},
		{name: "oversized signature", dynamic: map[string]string{PathDocument: ec2Document, PathSignature: strings.Repeat("A", MaxEvidenceBytes+1)},
			wantErr: ErrIMDS, errHas: "signature: larger than"},
		{name: "not JSON", dynamic: map[string]string{PathDocument: "<html>", PathSignature: ec2Signature}, wantErr: ErrIMDS, errHas: "document"},
		{name: "no instance id", dynamic: map[string]string{PathDocument: `{"region":"us-east-1","privateIp":"10.0.0.1"}`, PathSignature: ec2Signature},
			wantErr: ErrIMDS, errHas: "instanceId, region and privateIp are required"},
		{name: "instance id flag has no evidence", cfg: Config{InstanceID: "i-local", Fleet: "web", Coordinators: []string{"127.0.0.1:7001"}},
			wantErr: ErrConfig, errHas: "tls cert create --role agent --name i-local"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeIMDS{values: baseValues(), dynamic: tc.dynamic, failures: tc.failures}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			cfg := tc.cfg
			cfg.Endpoint, cfg.Attempts, cfg.Backoff, cfg.MaxBackoff, cfg.Logger = srv.URL, 4, time.Millisecond, 4*time.Millisecond, quiet()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ev, err := FetchEvidence(ctx, cfg)
			fake.mu.Lock()
			gets := fake.gets
			fake.mu.Unlock()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				if errors.Is(err, ErrNoEvidence) && gets > 2 {
					t.Fatalf("a 404 was retried: %d GETs", gets)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Document, []byte(ec2Document)) || !bytes.Equal(ev.Signature, []byte(ec2Signature)) {
				t.Fatalf("evidence changed in transit:\n%q\n%q", ev.Document, ev.Signature)
			}
			want := Document{AccountID: "123456789012", Architecture: "x86_64", AvailabilityZone: "us-east-1a", ImageID: "ami-123",
				InstanceID: "i-0abc", InstanceType: "t3.micro", PendingTime: time.Date(2026, 12, 7, 10, 11, 12, 0, time.UTC),
				PrivateIP: "127.0.0.11", Region: "us-east-1", Version: "2017-09-30"}
			if ev.Parsed != want {
				t.Fatalf("Parsed = %+v\nwant %+v", ev.Parsed, want)
			}
		})
	}
}

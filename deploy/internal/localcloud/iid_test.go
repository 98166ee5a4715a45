package localcloud

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// EC2's layout, byte for byte: two-space indent, " : ", EC2's key order,
// nulls for what an instance without marketplace codes or a kernel has.
const wantDocument = `{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1b",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-localbase",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "2026-12-07T10:11:12Z",
  "privateIp" : "127.0.77.9",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}`

func TestIdentityDocumentLayout(t *testing.T) {
	v := imdsView{
		InstanceID: "i-0123456789abcdef0", ImageID: BaseImageID, InstanceType: "t3.micro", AZ: "us-east-1b",
		IP: "127.0.77.9", Region: "us-east-1", AccountID: "123456789012",
		LaunchTime: time.Date(2026, 12, 7, 11, 11, 12, 500, time.FixedZone("CET", 3600)),
	}
	if got := string(identityDocument(v)); got != wantDocument {
		t.Fatalf("document:\n%s\nwant:\n%s", got, wantDocument)
	}
}

func TestIIDSignerSignsExactBytes(t *testing.T) {
	s, err := newIIDSigner("123456789012", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, s.certPEM)
	doc := []byte(wantDocument)
	sig, err := s.sign(doc)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		doc  []byte
		ok   bool
	}{
		{"exact bytes", doc, true},
		{"one byte changed", bytes.Replace(doc, []byte("127.0.77.9"), []byte("127.0.77.8"), 1), false},
		{"reformatted, same JSON", compactJSON(t, doc), false},
		{"trailing newline", append(append([]byte{}, doc...), '\n'), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := verifyIID(cert, c.doc, sig); (err == nil) != c.ok {
				t.Fatalf("verify = %v, want ok=%v", err, c.ok)
			}
		})
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("certificate is not self-signed: %v", err)
	}
	if n := cert.PublicKey.(*rsa.PublicKey).N.BitLen(); n != 2048 {
		t.Fatalf("key is %d bits, want 2048", n)
	}
}

// TestIdentityDocumentThroughIMDS launches an instance and reads its
// document and signature as an agent would: IMDSv2, raw bytes.
func TestIdentityDocumentThroughIMDS(t *testing.T) {
	certOut := filepath.Join(t.TempDir(), "iid.pem")
	tc := startCloud(t, func(c *Config) {
		c.IIDCertOut = certOut
		c.AccountID = "210987654321"
	})
	st, err := os.Stat(certOut)
	if err != nil {
		t.Fatalf("--iid-cert-out not written at start: %v", err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("cert mode %v, want 0644", st.Mode().Perm())
	}
	filePEM, _ := os.ReadFile(certOut)
	if !bytes.Equal(filePEM, tc.srv.Cloud().IIDCertificatePEM()) {
		t.Fatal("written certificate differs from the cloud's")
	}
	cert := parsePEMCert(t, filePEM)

	ctx := ctxT(t)
	run, err := tc.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(BaseImageID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte("exec sleep 600")))})
	if err != nil {
		t.Fatal(err)
	}
	inst := run.Instances[0]
	id := aws.ToString(inst.InstanceId)
	var info InstanceInfo
	for _, in := range tc.instances(t) {
		if in.ID == id {
			info = in
		}
	}
	if info.IMDSEndpoint == "" {
		t.Fatalf("instance %s has no IMDS endpoint: %+v", id, info)
	}
	tok := imdsToken(t, info.IMDSEndpoint)
	base := info.IMDSEndpoint + "latest/dynamic/instance-identity/"
	doc := imdsRead(t, base+"document", tok, http.StatusOK)
	sig := imdsRead(t, base+"signature", tok, http.StatusOK)
	if again := imdsRead(t, base+"document", imdsToken(t, info.IMDSEndpoint), http.StatusOK); !bytes.Equal(doc, again) {
		t.Fatalf("document changed between reads:\n%s\n%s", doc, again)
	}
	if err := verifyIID(cert, doc, string(sig)); err != nil {
		t.Fatalf("signature does not verify with the --iid-cert-out certificate: %v", err)
	}

	var got struct {
		AccountID, AvailabilityZone, ImageID, InstanceID, InstanceType, PendingTime, PrivateIP, Region string
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"accountId": "210987654321", "availabilityZone": aws.ToString(inst.Placement.AvailabilityZone), "imageId": BaseImageID,
		"instanceId": id, "instanceType": string(inst.InstanceType), "privateIp": info.IP, "region": "us-east-1",
		"pendingTime": aws.ToTime(inst.LaunchTime).UTC().Format(time.RFC3339),
	}
	have := map[string]string{
		"accountId": got.AccountID, "availabilityZone": got.AvailabilityZone, "imageId": got.ImageID, "instanceId": got.InstanceID,
		"instanceType": got.InstanceType, "privateIp": got.PrivateIP, "region": got.Region, "pendingTime": got.PendingTime,
	}
	for k, w := range want {
		if have[k] != w {
			t.Errorf("%s = %q, want %q", k, have[k], w)
		}
	}
	// The coordinator's default --iid-accounts is its own account from
	// STS: the same config field must answer both.
	who, err := sts.NewFromConfig(tc.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Account) != got.AccountID {
		t.Errorf("STS account %s, document account %s", aws.ToString(who.Account), got.AccountID)
	}
	if !strings.HasPrefix(got.PrivateIP, "127.0.77.") {
		t.Errorf("privateIp %q is not the instance's loopback address", got.PrivateIP)
	}

	// Only what Shoal verifies is served; IMDSv2 rules apply as elsewhere.
	imdsRead(t, base+"pkcs7", tok, http.StatusNotFound)
	imdsRead(t, base+"rsa2048", tok, http.StatusNotFound)
	imdsRead(t, base+"document", "", http.StatusUnauthorized)
	imdsRead(t, base+"signature", "stale-token", http.StatusUnauthorized)
}

func verifyIID(cert *x509.Certificate, doc []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig)
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func imdsToken(t *testing.T, endpoint string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, endpoint+"latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func imdsRead(t *testing.T, url, token string, wantStatus int) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, wantStatus)
	}
	return b
}

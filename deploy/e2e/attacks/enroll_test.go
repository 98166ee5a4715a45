//go:build multiprocess

package attacks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// localAccount is the local cloud's default account id.
const localAccount = "123456789012"

// TestForgedEnrollment asks a coordinator that enrolls agents (--cloud aws
// on the local cloud, which it trusts through --iid-trust) for an agent
// certificate with identity documents the local cloud never signed.
func TestForgedEnrollment(t *testing.T) {
	start := time.Now()
	c := &cluster{bin: testkit.Binary(t, "shoal-coordinator"), pki: t.TempDir(), rogue: t.TempDir()}
	c.issueAll(t)
	cloudBin := testkit.Binary(t, "shoal-localcloud")
	logs := t.TempDir()
	cloudAddr := testkit.FreeAddr(t)
	// enroll.LoadTrust binds a certificate to the region its file is named for.
	trust := filepath.Join(t.TempDir(), "us-east-1-localcloud.pem")
	testkit.Start(t, cloudBin, []string{"serve", "--addr", cloudAddr, "--iid-cert-out", trust, "--log-level", "warn"},
		testkit.Options{Name: "localcloud", LogDir: logs})
	testkit.WaitHTTP(t, "http://"+cloudAddr+"/_localcloud/health", 20*time.Second)

	n := &node{id: "n1", raft: testkit.FreeAddr(t), rpc: testkit.FreeAddr(t), http: testkit.FreeAddr(t), data: t.TempDir()}
	c.nodes = []*node{n}
	cert, key := c.cert("server", n.id)
	testkit.Start(t, c.bin, []string{"serve", "--node-id", n.id, "--data-dir", n.data, "--bootstrap",
		"--raft-addr", n.raft, "--rpc-addr", n.rpc, "--http-addr", n.http,
		"--ca-cert", c.caFile(), "--cert", cert, "--key", key, "--ca-key", filepath.Join(c.pki, "shoal-ca-key.pem"),
		"--cloud", "aws", "--iid-trust", trust, "--log-level", "debug",
	}, testkit.Options{Name: "coordinator-n1", LogDir: logs, Env: []string{
		"AWS_ENDPOINT_URL=http://" + cloudAddr, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=attacks", "AWS_SECRET_ACCESS_KEY=attacks",
	}})
	testkit.WaitHTTP(t, "http://"+n.http+"/healthz", 20*time.Second)
	testkit.Eventually(t, 20*time.Second, func() error {
		var st status
		if err := c.cliJSON(&st, c.opCreds(""), "status"); err != nil {
			return err
		}
		if st.LeaderID != n.id {
			return fmt.Errorf("leader %q", st.LeaderID)
		}
		return nil
	})
	var tok struct{ Secret string }
	if err := c.cliJSON(&tok, c.opCreds(""), "acl", "bootstrap"); err != nil {
		t.Fatal(err)
	}
	c.admin = tok.Secret
	if out, err := c.cli(c.adminCreds(), "fleet", "create", fleet, "--asg", "shoal-web", "--min", "1", "--max", "5", "--app-port", "8080"); err != nil {
		t.Fatalf("fleet create: %v\n%s", err, out)
	}
	var before status
	if err := c.cliJSON(&before, c.adminCreds(), "status"); err != nil {
		t.Fatal(err)
	}

	// What a forger sends: a document in EC2's form naming an invented
	// instance at the caller's own address, and a CSR for its own key.
	doc := []byte(fmt.Sprintf("{\n  \"accountId\" : %q,\n  \"instanceId\" : %q,\n  \"pendingTime\" : %q,\n  \"privateIp\" : \"127.0.0.1\",\n  \"region\" : \"us-east-1\",\n  \"version\" : \"2017-09-30\"\n}",
		localAccount, invented, time.Now().UTC().Format(time.RFC3339)))
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(doc)
	forged, err := rsa.SignPKCS1v15(rand.Reader, forger, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	agentKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, agentKey)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)

	m0 := metrics(t, n)
	client := shoalv1.NewAgentServiceClient(conn(t, n.rpc, c.tlsConfig(t, "", ""), ""))
	for _, tc := range []struct {
		name string
		sig  []byte
	}{
		{"signed with the forger's own key", []byte(base64.StdEncoding.EncodeToString(forged))},
		{"unsigned (the signature is not base64)", []byte("not signed at all")},
		{"the forger's signature over other bytes", []byte(base64.StdEncoding.EncodeToString(append([]byte(nil), forged[:len(forged)-1]...)))},
	} {
		resp, err := client.Enroll(callCtx(t), &shoalv1.EnrollRequest{IdentityDocument: doc, IdentitySignature: tc.sig, Csr: csr, Nonce: nonce})
		if err == nil {
			t.Errorf("HOLE: %s: enrolled, certificate issued:\n%s", tc.name, resp.GetCertificateChain())
			continue
		}
		wantCode(t, tc.name, err, codes.PermissionDenied)
	}
	counted(t, m0, metrics(t, n), map[string]float64{denied("bad_signature"): 3})

	// Nothing was committed for the invented instance.
	ins, err := c.instances()
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 0 {
		t.Errorf("registry after forged enrollments: %+v; want empty", ins)
	}
	var after status
	if err := c.cliJSON(&after, c.adminCreds(), "status"); err != nil {
		t.Fatal(err)
	}
	if after.LeaderID != before.LeaderID || len(after.Nodes) != len(before.Nodes) {
		t.Errorf("status moved: %+v, then %+v", before, after)
	}
	t.Logf("forged enrollments refused in %v", time.Since(start).Round(time.Millisecond))
}

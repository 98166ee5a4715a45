package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// The environment variables that hold an operator's credentials, as
// Consul's CONSUL_CACERT and friends do. A flag wins over its variable.
const (
	EnvCACert     = "SHOAL_CACERT"
	EnvClientCert = "SHOAL_CLIENT_CERT"
	EnvClientKey  = "SHOAL_CLIENT_KEY"
	EnvToken      = "SHOAL_TOKEN"
)

// creds are the credential flags every operator command takes.
type creds struct {
	caCert, clientCert, clientKey, token string
}

func (c *creds) register(cmd *cobra.Command, getenv func(string) string) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.caCert, "ca-cert", getenv(EnvCACert), "CA bundle that signs the coordinators' certificates; without it the CLI talks plaintext, to --insecure clusters only (env "+EnvCACert+")")
	pf.StringVar(&c.clientCert, "client-cert", getenv(EnvClientCert), "operator certificate (tls cert create --role operator) (env "+EnvClientCert+")")
	pf.StringVar(&c.clientKey, "client-key", getenv(EnvClientKey), "key of --client-cert (env "+EnvClientKey+")")
	pf.StringVar(&c.token, "token", getenv(EnvToken), "ACL token secret (env "+EnvToken+")")
}

// dialOptions are the transport and token options the flags ask for.
func (c *creds) dialOptions() ([]grpc.DialOption, error) {
	switch {
	case c.clientCert != "" && c.clientKey == "":
		return nil, fmt.Errorf("client-key: required with client-cert (env %s)", EnvClientKey)
	case c.clientKey != "" && c.clientCert == "":
		return nil, fmt.Errorf("client-cert: required with client-key (env %s)", EnvClientCert)
	case c.caCert == "" && c.clientCert != "":
		return nil, fmt.Errorf("ca-cert: required with client-cert, to verify the coordinator (env %s)", EnvCACert)
	}
	if c.caCert == "" {
		// Plaintext: an --insecure cluster checks no token, but one given is
		// sent anyway, so a script works the same against both.
		if c.token == "" {
			return nil, nil
		}
		return []grpc.DialOption{rpc.WithToken(c.token, true)}, nil
	}
	src, err := tlsconf.NewSource(tlsconf.Config{CAFile: c.caCert, CertFile: c.clientCert, KeyFile: c.clientKey, Cluster: clusterOf(c.clientCert)})
	if err != nil {
		return nil, errors.New(flagNames.Replace(err.Error()))
	}
	opts := []grpc.DialOption{tlsconf.DialOption(tlsconf.ClientConfig(src))}
	if c.token != "" {
		opts = append(opts, rpc.WithToken(c.token, false))
	}
	return opts, nil
}

// flagNames turns tlsconf's field names into this CLI's flag names.
var flagNames = strings.NewReplacer("ca-file", "ca-cert", "cert-file", "client-cert", "key-file", "client-key")

// clusterOf is the cluster the operator certificate belongs to, which is
// the cluster whose servers the CLI accepts. Without a readable one it is
// the default; NewSource then reports what is wrong with the file.
func clusterOf(certFile string) string {
	if certFile == "" {
		return tlsconf.DefaultCluster
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return tlsconf.DefaultCluster
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return tlsconf.DefaultCluster
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return tlsconf.DefaultCluster
	}
	id, err := tlsconf.ParseIdentity(cert)
	if err != nil {
		return tlsconf.DefaultCluster
	}
	return id.Cluster
}

// transportError explains a call that failed before it reached the
// coordinator because the two sides disagree about TLS.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// diagnose names a TLS mismatch behind an UNAVAILABLE, or returns nil.
func (e *env) diagnose(err error) error {
	if status.Code(err) != codes.Unavailable {
		return nil
	}
	msg := status.Convert(err).Message()
	switch {
	case e.caCert == "":
		if isTLS, _ := probeTLS(e.address, probeTimeout(e.timeout)); isTLS {
			return &transportError{fmt.Sprintf("the coordinator at %s speaks TLS: set %s (and %s/%s, %s)", e.address, EnvCACert, EnvClientCert, EnvClientKey, EnvToken), err}
		}
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return &transportError{fmt.Sprintf("the coordinator at %s speaks plaintext (an --insecure cluster): unset %s and --ca-cert", e.address, EnvCACert), err}
	case e.clientCert == "" && (strings.Contains(msg, "certificate required") || wantsClientCert(e.address, probeTimeout(e.timeout))):
		return &transportError{fmt.Sprintf("the coordinator at %s requires a client certificate; %s is not set (set %s and %s, or --client-cert and --client-key)", e.address, EnvClientCert, EnvClientCert, EnvClientKey), err}
	}
	return nil
}

// probeTLS shakes hands with addr only to explain a failed call: it
// verifies nothing and presents no certificate, and sends no credential.
// isTLS reports whether the handshake got as far as the server's
// certificate; wantsCert whether the server then refused the connection for
// want of a client certificate (TLS 1.3's "certificate required" alert).
func probeTLS(addr string, timeout time.Duration) (isTLS, wantsCert bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, false
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
	if err := conn.HandshakeContext(ctx); err != nil {
		return false, strings.Contains(err.Error(), "certificate required")
	}
	// TLS 1.3 finishes the client's handshake before the server has seen
	// the client's certificate; its verdict comes with the first read.
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	_, err = conn.Read(make([]byte, 1))
	return true, err != nil && strings.Contains(err.Error(), "certificate required")
}

func wantsClientCert(addr string, timeout time.Duration) bool {
	_, wants := probeTLS(addr, timeout)
	return wants
}

// probeTimeout bounds a diagnosis: a few seconds, and never past --timeout.
func probeTimeout(timeout time.Duration) time.Duration { return min(timeout, 3*time.Second) }

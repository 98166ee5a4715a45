package cli

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// File names the tls commands write and read by default, in the current
// directory (modelled on `consul tls`).
const (
	caCertFile = "shoal-ca.pem"
	caKeyFile  = "shoal-ca-key.pem"
)

func tlsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tls", Short: "create the cluster's CA and its certificates (works offline, on files)"}
	ca := &cobra.Command{Use: "ca", Short: "the certificate authority"}
	ca.AddCommand(tlsCACreateCmd(e))
	cert := &cobra.Command{Use: "cert", Short: "certificates for servers, LBs, agents and operators"}
	cert.AddCommand(tlsCertCreateCmd(e))
	cmd.AddCommand(ca, cert)
	return cmd
}

// plainError drops the sentinel prefixes that say which package refused: the
// field and reason after them are what an operator needs, on one line.
func plainError(err error) error {
	msg := err.Error()
	for _, s := range []error{pki.ErrInvalid, tlsconf.ErrIdentity} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return errors.New(msg)
}

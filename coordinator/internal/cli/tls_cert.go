package cli

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func tlsCertCreateCmd(e *env) *cobra.Command {
	var (
		role, name string
		ips, dns   []string
		days       int
		force      bool
	)
	cluster, caFile, caKey, out := tlsconf.DefaultCluster, caCertFile, caKeyFile, "."
	cmd := &cobra.Command{
		Use:   "create --role server|lb|agent|operator --name NAME [--ip IP]... [--dns DNS]...",
		Short: "issue a certificate: writes <cluster>-<role>-<name>.pem and <cluster>-<role>-<name>-key.pem (mode 0600)",
		Long: "Issue a certificate whose identity is spiffe://<cluster>/<role>/<name>.\n" +
			"Only a server certificate can serve (raft, the gRPC port); agent certificates last 1 day at most.\n" +
			"--days defaults by role: server and lb 365, operator 30, agent 1.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := tlsconf.ParseRole(role)
			if err != nil {
				return plainError(err)
			}
			id := tlsconf.Identity{Cluster: cluster, Role: r, Name: name}
			if err := id.Validate(); err != nil {
				return plainError(err)
			}
			var validity time.Duration
			switch maxDays := int(pki.MaxAgentValidity / (24 * time.Hour)); {
			case days < 0:
				return fmt.Errorf("days (%d): must be positive", days)
			case r == tlsconf.RoleAgent && days > maxDays:
				return fmt.Errorf("days (%d): an agent certificate lasts %d day at most", days, maxDays)
			case days > 0:
				validity = time.Duration(days) * 24 * time.Hour
			}
			req := pki.LeafRequest{Identity: id, DNSNames: dns, Validity: validity}
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("ip (%q): not an IP address", s)
				}
				req.IPs = append(req.IPs, ip)
			}
			ca, err := pki.LoadCA(caFile, caKey)
			if err != nil {
				return err
			}
			certPEM, keyPEM, err := ca.Issue(req)
			if err != nil {
				return plainError(err)
			}
			base := filepath.Join(out, fmt.Sprintf("%s-%s-%s", cluster, r, name))
			certPath, keyPath := base+".pem", base+"-key.pem"
			if err := pki.WriteFiles(force,
				pki.Output{Path: certPath, Data: certPEM, Mode: pki.CertMode},
				pki.Output{Path: keyPath, Data: keyPEM, Mode: pki.KeyMode},
			); err != nil {
				return err
			}
			blk, _ := pem.Decode(certPEM)
			leaf, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return err
			}
			notAfter := leaf.NotAfter.UTC().Format(time.RFC3339)
			if e.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{
					"cert_file": certPath, "key_file": keyPath, "identity": id.String(),
					"serial": leaf.SerialNumber.Text(16), "not_after": notAfter,
				})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s (%s, until %s)\n", certPath, id, notAfter)
			fmt.Fprintf(w, "wrote %s\n", keyPath)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "server, lb, agent or operator")
	fl.StringVar(&name, "name", "", "node id, LB name, instance id or operator name")
	fl.StringArrayVar(&ips, "ip", nil, "IP address SAN (repeatable)")
	fl.StringArrayVar(&dns, "dns", nil, "DNS name SAN (repeatable)")
	fl.StringVar(&cluster, "cluster", cluster, "cluster name; must be the CA's")
	fl.StringVar(&caFile, "ca", caFile, "CA certificate (or a bundle holding it)")
	fl.StringVar(&caKey, "ca-key", caKey, "CA key")
	fl.IntVar(&days, "days", 0, "days the certificate is valid (default by role)")
	fl.StringVar(&out, "out", out, "directory to write the files into")
	fl.BoolVar(&force, "force", false, "overwrite existing files")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

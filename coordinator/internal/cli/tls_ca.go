package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func tlsCACreateCmd(e *env) *cobra.Command {
	days := int(pki.DefaultCAValidity / (24 * time.Hour))
	cluster, out, force := tlsconf.DefaultCluster, ".", false
	cmd := &cobra.Command{
		Use:   "create [--days N] [--cluster NAME] [--out DIR]",
		Short: "create a CA: writes " + caCertFile + " and " + caKeyFile + " (mode 0600)",
		Long: "Create a certificate authority that signs certificates of one cluster only.\n" +
			"Keep " + caKeyFile + " off the nodes if you can: whoever reads it can issue any certificate.\n" +
			"To rotate, create a new CA in another directory and append its " + caCertFile + " to the\n" +
			"bundle every node trusts; issue new certificates from it; then drop the old CA from the bundle.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if days <= 0 {
				return fmt.Errorf("days (%d): must be positive", days)
			}
			ca, err := pki.NewCA(pki.CARequest{Cluster: cluster, Validity: time.Duration(days) * 24 * time.Hour})
			if err != nil {
				return plainError(err)
			}
			keyPEM, err := ca.KeyPEM()
			if err != nil {
				return err
			}
			certPath, keyPath := filepath.Join(out, caCertFile), filepath.Join(out, caKeyFile)
			if err := pki.WriteFiles(force,
				pki.Output{Path: certPath, Data: ca.CertPEM(), Mode: pki.CertMode},
				pki.Output{Path: keyPath, Data: keyPEM, Mode: pki.KeyMode},
			); err != nil {
				return err
			}
			notAfter := ca.Cert.NotAfter.UTC().Format(time.RFC3339)
			if e.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"cert_file": certPath, "key_file": keyPath, "cluster": cluster, "not_after": notAfter})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s (CA of cluster %s, until %s)\n", certPath, cluster, notAfter)
			fmt.Fprintf(w, "wrote %s (keep it secret: it signs every certificate)\n", keyPath)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&days, "days", days, "days the CA is valid")
	fl.StringVar(&cluster, "cluster", cluster, "cluster name; the CA signs certificates of this cluster only")
	fl.StringVar(&out, "out", out, "directory to write the files into")
	fl.BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

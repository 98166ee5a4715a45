package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func aclCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "acl", Short: "operator tokens: bootstrap, create, list, delete"}
	token := &cobra.Command{Use: "token", Short: "create, list or delete tokens (admin)"}
	token.AddCommand(aclTokenCreateCmd(e), aclTokenListCmd(e), aclTokenDeleteCmd(e))
	cmd.AddCommand(aclBootstrapCmd(e), token)
	return cmd
}

func aclBootstrapCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "make the cluster's first admin token (works once per cluster; JSON: name, policy, secret, accessor_id)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.callACL(cmd, func(ctx context.Context, c shoalv1.ACLServiceClient) error {
				r, err := c.BootstrapACL(ctx, &shoalv1.BootstrapACLRequest{})
				if err != nil {
					return err
				}
				return e.printNewToken(cmd.OutOrStdout(), r.Token, r.Secret)
			})
		},
	}
}

func aclTokenCreateCmd(e *env) *cobra.Command {
	var name, policy string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --name NAME --policy read|operate|admin [--ttl D]",
		Short: "make a token (JSON: name, policy, secret, accessor_id)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("name: required")
			}
			if policy == "" {
				return fmt.Errorf("policy: required (read, operate or admin)")
			}
			p, err := view.ParseTokenPolicy(policy)
			if err != nil {
				return err
			}
			if ttl < 0 {
				return fmt.Errorf("ttl (%s): must not be negative (0 means no expiry)", ttl)
			}
			req := &shoalv1.CreateTokenRequest{Name: name, Policy: p}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			return e.callACL(cmd, func(ctx context.Context, c shoalv1.ACLServiceClient) error {
				r, err := c.CreateToken(ctx, req)
				if err != nil {
					return err
				}
				return e.printNewToken(cmd.OutOrStdout(), r.Token, r.Secret)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "token name, as logs and decisions show it (e.g. ops-alice)")
	f.StringVar(&policy, "policy", "", "read, operate or admin")
	f.DurationVar(&ttl, "ttl", 0, "time to live, at least 1m (0: no expiry)")
	return cmd
}

func aclTokenListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list tokens, without their secrets (JSON: an array)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.callACL(cmd, func(ctx context.Context, c shoalv1.ACLServiceClient) error {
				r, err := c.ListTokens(ctx, &shoalv1.ListTokensRequest{})
				if err != nil {
					return err
				}
				ts := view.TokensOf(r.Tokens)
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), ts)
				}
				rows := [][]string{{"ACCESSOR_ID", "NAME", "POLICY", "CREATED", "EXPIRES"}}
				for _, t := range ts {
					rows = append(rows, []string{t.AccessorID, t.Name, t.Policy, t.CreatedAt, orNever(t.ExpiresAt)})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
}

func aclTokenDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ACCESSOR_ID",
		Short: "delete a token; its secret stops working at once",
		Args:  exactArgs("ACCESSOR_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.callACL(cmd, func(ctx context.Context, c shoalv1.ACLServiceClient) error {
				if _, err := c.DeleteToken(ctx, &shoalv1.DeleteTokenRequest{AccessorId: args[0]}); err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted token %s\n", args[0])
				return nil
			})
		},
	}
}

// printNewToken shows a token just made with its secret, which the cluster
// does not keep: this is the one time anyone sees it.
func (e *env) printNewToken(w io.Writer, t *shoalv1.Token, secret string) error {
	v := view.NewTokenOf(t, secret)
	if e.output == "json" {
		return printJSON(w, v)
	}
	if err := table(w, [][]string{
		{"accessor_id:", v.AccessorID}, {"name:", v.Name}, {"policy:", v.Policy},
		{"created:", v.CreatedAt}, {"expires:", orNever(v.ExpiresAt)}, {"secret:", v.Secret},
	}); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nThe secret is shown only now; keep it safe. Use it with:\n  export %s=%s\n", EnvToken, v.Secret)
	return err
}

func orNever(s string) string {
	if s == "" {
		return "never"
	}
	return s
}

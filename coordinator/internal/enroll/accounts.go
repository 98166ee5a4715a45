package enroll

import (
	"context"
	"fmt"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// STSAPI is the STS call ResolveAccounts makes; *sts.Client implements it.
type STSAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ STSAPI = (*sts.Client)(nil)

// ResolveAccounts returns the accounts enrollment accepts: configured
// (--iid-accounts) when it is not empty, else the one account of the
// coordinator's own credentials, from STS GetCallerIdentity.
func ResolveAccounts(ctx context.Context, configured []string, c STSAPI) ([]string, error) {
	if len(configured) > 0 {
		return append([]string(nil), configured...), nil
	}
	if c == nil {
		return nil, fmt.Errorf("iid-accounts: not set, and no STS client to find the coordinator's own account")
	}
	out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("iid-accounts: not set, and STS GetCallerIdentity failed: %w", err)
	}
	a := sdkaws.ToString(out.Account)
	if !accountRE.MatchString(a) {
		return nil, fmt.Errorf("iid-accounts: not set, and STS GetCallerIdentity answered account %.20q, not 12 digits", a)
	}
	return []string{a}, nil
}

package aws

import (
	"context"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

var _ cloud.Cloud = (*Cloud)(nil)

// Cloud is cloud.Cloud on Auto Scaling and EC2.
type Cloud struct {
	as  *autoscaling.Client
	ec2 *ec2.Client
}

// New builds the clients from cfg (see LoadConfig).
func New(cfg sdkaws.Config) *Cloud {
	return &Cloud{as: autoscaling.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
}

// Open loads the shared AWS config for c and builds a Cloud on it. Build the
// CloudWatch client (package publish) from the returned config too: its
// limiter middleware is what makes the budget shared.
func Open(ctx context.Context, c Config) (*Cloud, sdkaws.Config, error) {
	cfg, err := LoadConfig(ctx, c)
	if err != nil {
		return nil, sdkaws.Config{}, err
	}
	return New(cfg), cfg, nil
}

package cli

import (
	"slices"
	"sort"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
)

// Agent enrollment's AWS calls: the instance's group membership, and the
// account of the coordinator's own credentials (the --iid-accounts default).
const (
	opDescribeAutoScalingInstances = "autoscaling:DescribeAutoScalingInstances"
	opGetCallerIdentity            = "sts:GetCallerIdentity"
)

// ServeAWSOperations lists every AWS operation `serve` can make, as IAM names
// it: the coordinator instance role (deploy/iam/coordinator-policy.json.tftpl)
// grants exactly these, and deploy/check fails when the two differ. A change
// that makes the daemon call something new adds it here.
func ServeAWSOperations() []string {
	ops := append(awscloud.ScalingOperations(), publish.Operations()...)
	ops = append(ops, opDescribeAutoScalingInstances, opGetCallerIdentity)
	sort.Strings(ops)
	return ops
}

// BootstrapAWSOperations lists every AWS operation `fleet bootstrap` and
// `fleet delete --purge` can make, both with the operator's credentials:
// the operator role (deploy/iam/operator-policy.json.tftpl) grants exactly
// these, plus what AWS checks inside them (ec2:RunInstances, iam:PassRole
// and ec2:CreateTags for a group created from a launch template). They are
// the operations of bootstrap.Cloud's and cloud.Teardown's methods.
func BootstrapAWSOperations() []string {
	ops := []string{
		awscloud.OpDescribeSubnets, awscloud.OpDescribeInstances,
		awscloud.OpDescribeImages, awscloud.OpCreateImage,
		awscloud.OpDescribeLaunchTemplates, awscloud.OpCreateLaunchTemplate, awscloud.OpCreateLaunchTemplateVersion,
		awscloud.OpDescribeAutoScalingGroups, awscloud.OpCreateAutoScalingGroup,
		awscloud.OpDescribeLifecycleHooks, awscloud.OpPutLifecycleHook,
		awscloud.OpDescribeWarmPool, awscloud.OpPutWarmPool,
	}
	ops = append(ops, awscloud.TeardownOperations()...)
	sort.Strings(ops)
	return slices.Compact(ops)
}

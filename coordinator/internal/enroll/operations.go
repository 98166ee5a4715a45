package enroll

// The AWS operations enrollment makes, as IAM actions, for the coordinator
// daemon's role (deploy/check reads Operations from source).
const (
	OpDescribeAutoScalingInstances = "autoscaling:DescribeAutoScalingInstances"
	// OpGetCallerIdentity needs no IAM permission; it is listed so the
	// role's calls are complete.
	OpGetCallerIdentity = "sts:GetCallerIdentity"
)

// Operations lists the AWS operations this package calls.
func Operations() []string {
	return []string{OpDescribeAutoScalingInstances, OpGetCallerIdentity}
}

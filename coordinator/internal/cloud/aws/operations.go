package aws

import "sort"

// Every AWS operation this package can call, as IAM names it. Each method
// uses exactly one of these constants, and TestOperationsMatchCalls drives
// every method against a recording server to prove the list is complete.
const (
	OpDescribeAutoScalingGroups           = "autoscaling:DescribeAutoScalingGroups"
	OpSetDesiredCapacity                  = "autoscaling:SetDesiredCapacity"
	OpTerminateInstanceInAutoScalingGroup = "autoscaling:TerminateInstanceInAutoScalingGroup"
	OpSetInstanceProtection               = "autoscaling:SetInstanceProtection"
	OpDescribeInstanceRefreshes           = "autoscaling:DescribeInstanceRefreshes"
	OpDescribeScalingActivities           = "autoscaling:DescribeScalingActivities"
	OpPutLifecycleHook                    = "autoscaling:PutLifecycleHook"
	OpDescribeLifecycleHooks              = "autoscaling:DescribeLifecycleHooks"
	OpCompleteLifecycleAction             = "autoscaling:CompleteLifecycleAction"
	OpRecordLifecycleActionHeartbeat      = "autoscaling:RecordLifecycleActionHeartbeat"
	OpCreateAutoScalingGroup              = "autoscaling:CreateAutoScalingGroup"
	OpUpdateAutoScalingGroup              = "autoscaling:UpdateAutoScalingGroup"
	OpRunInstances                        = "ec2:RunInstances"
	OpDescribeInstances                   = "ec2:DescribeInstances"
	OpTerminateInstances                  = "ec2:TerminateInstances"
	OpCreateImage                         = "ec2:CreateImage"
	OpDescribeImages                      = "ec2:DescribeImages"
	OpCreateLaunchTemplate                = "ec2:CreateLaunchTemplate"
	OpCreateLaunchTemplateVersion         = "ec2:CreateLaunchTemplateVersion"
	OpDescribeLaunchTemplates             = "ec2:DescribeLaunchTemplates"
	OpDescribeSubnets                     = "ec2:DescribeSubnets"
)

// Operations returns every operation the package can call, sorted.
func Operations() []string {
	ops := []string{
		OpDescribeAutoScalingGroups, OpSetDesiredCapacity, OpTerminateInstanceInAutoScalingGroup,
		OpSetInstanceProtection, OpDescribeInstanceRefreshes, OpDescribeScalingActivities,
		OpPutLifecycleHook, OpDescribeLifecycleHooks, OpCompleteLifecycleAction,
		OpRecordLifecycleActionHeartbeat, OpCreateAutoScalingGroup, OpUpdateAutoScalingGroup,
		OpRunInstances, OpDescribeInstances, OpTerminateInstances, OpCreateImage, OpDescribeImages,
		OpCreateLaunchTemplate, OpCreateLaunchTemplateVersion, OpDescribeLaunchTemplates, OpDescribeSubnets,
	}
	sort.Strings(ops)
	return ops
}

// iamPrefix maps the SDK's service IDs to IAM's action prefixes.
var iamPrefix = map[string]string{
	"Auto Scaling": "autoscaling",
	"EC2":          "ec2",
	"CloudWatch":   "cloudwatch",
}

// IAMAction names an SDK call (service ID and operation, as
// middleware.GetServiceID/GetOperationName report them) the way IAM does.
func IAMAction(serviceID, operation string) string {
	p, ok := iamPrefix[serviceID]
	if !ok {
		p = serviceID
	}
	return p + ":" + operation
}

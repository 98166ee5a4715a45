package aws

import (
	"slices"
	"sort"
)

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
	OpDescribeWarmPool                    = "autoscaling:DescribeWarmPool"
	OpPutWarmPool                         = "autoscaling:PutWarmPool"
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
	OpDeleteAutoScalingGroup              = "autoscaling:DeleteAutoScalingGroup"
	OpDeleteLaunchTemplate                = "ec2:DeleteLaunchTemplate"
	OpDeregisterImage                     = "ec2:DeregisterImage"
	OpDeleteSnapshot                      = "ec2:DeleteSnapshot"
)

// Operations returns every operation the package can call, sorted.
func Operations() []string {
	ops := append(ScalingOperations(), BootstrapOperations()...)
	ops = append(ops, OpDeleteAutoScalingGroup, OpDeleteLaunchTemplate, OpDeregisterImage, OpDeleteSnapshot)
	sort.Strings(ops)
	return slices.Compact(ops)
}

// TeardownOperations are the operations of cloud.Teardown's methods: what
// `fleet delete --purge` can call, with the operator's credentials.
func TeardownOperations() []string {
	return []string{
		OpDescribeAutoScalingGroups, OpDeleteAutoScalingGroup, OpDescribeLaunchTemplates, OpDeleteLaunchTemplate,
		OpDescribeImages, OpDeregisterImage, OpDeleteSnapshot,
	}
}

// ScalingOperations are the operations of cloud.Scaling's methods: what the
// scaler and the lifecycle-hook watcher, inside the running coordinator, can
// call. The coordinator's own role is checked against them.
func ScalingOperations() []string {
	return []string{
		OpCompleteLifecycleAction, OpDescribeAutoScalingGroups, OpDescribeInstanceRefreshes,
		OpDescribeLifecycleHooks, OpDescribeScalingActivities, OpPutLifecycleHook,
		OpRecordLifecycleActionHeartbeat, OpSetDesiredCapacity, OpSetInstanceProtection,
		OpTerminateInstanceInAutoScalingGroup, OpDescribeWarmPool,
	}
}

// BootstrapOperations are the operations of cloud.Bootstrap's methods.
func BootstrapOperations() []string {
	return []string{
		OpCreateAutoScalingGroup, OpUpdateAutoScalingGroup, OpPutWarmPool,
		OpCreateImage, OpCreateLaunchTemplate, OpCreateLaunchTemplateVersion, OpDescribeImages,
		OpDescribeInstances, OpDescribeLaunchTemplates, OpDescribeSubnets, OpRunInstances, OpTerminateInstances,
	}
}

// MethodOperations maps each method of cloud.Cloud to the one operation it
// calls, so a caller that declares the methods it uses (an interface) can
// name the IAM actions it needs. TestOperationsMatchCalls proves each entry.
var MethodOperations = map[string]string{
	"DescribeGroups":                 OpDescribeAutoScalingGroups,
	"SetDesiredCapacity":             OpSetDesiredCapacity,
	"TerminateInstance":              OpTerminateInstanceInAutoScalingGroup,
	"SetInstanceProtection":          OpSetInstanceProtection,
	"ActiveInstanceRefresh":          OpDescribeInstanceRefreshes,
	"DescribeScalingActivities":      OpDescribeScalingActivities,
	"PutLifecycleHook":               OpPutLifecycleHook,
	"DescribeLifecycleHooks":         OpDescribeLifecycleHooks,
	"CompleteLifecycleAction":        OpCompleteLifecycleAction,
	"RecordLifecycleActionHeartbeat": OpRecordLifecycleActionHeartbeat,
	"DescribeWarmPool":               OpDescribeWarmPool,
	"PutWarmPool":                    OpPutWarmPool,
	"CreateGroup":                    OpCreateAutoScalingGroup,
	"UpdateGroup":                    OpUpdateAutoScalingGroup,
	"RunInstances":                   OpRunInstances,
	"DescribeInstances":              OpDescribeInstances,
	"TerminateInstances":             OpTerminateInstances,
	"CreateImage":                    OpCreateImage,
	"DescribeImages":                 OpDescribeImages,
	"CreateLaunchTemplate":           OpCreateLaunchTemplate,
	"CreateLaunchTemplateVersion":    OpCreateLaunchTemplateVersion,
	"DescribeLaunchTemplates":        OpDescribeLaunchTemplates,
	"DescribeSubnets":                OpDescribeSubnets,
	"DeleteGroup":                    OpDeleteAutoScalingGroup,
	"DeleteLaunchTemplate":           OpDeleteLaunchTemplate,
	"DeregisterImage":                OpDeregisterImage,
	"DeleteSnapshot":                 OpDeleteSnapshot,
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

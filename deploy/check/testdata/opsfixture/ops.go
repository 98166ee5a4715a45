package opsfixture

import (
	other "github.com/shoal-dev/shoal/deploy/check/testdata/opsfixture/sub"
)

const (
	OpA      = "autoscaling:SetDesiredCapacity"
	OpB      = "ec2:CreateImage"
	OpUnused = "ec2:DeleteVpc"
	notAnOp  = "hello"
)

func Operations() []string {
	ops := []string{OpA, notAnOp}
	return append(ops, more()...)
}

func more() []string { return []string{OpB, "cloudwatch:PutMetricData"} }

type lister struct{ OpUnused string }

// Across packages: another package's function and constant count; a field
// named like a constant of this package does not.
func WithOther() []string {
	var l lister
	return append(other.List(), other.OpC, l.OpUnused)
}

package opsfixture

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

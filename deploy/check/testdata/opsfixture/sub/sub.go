package sub

const (
	OpC       = "sts:GetCallerIdentity"
	OpD       = "ssm:GetParameter"
	OpNotUsed = "ec2:DeleteVpc"
)

func List() []string { return []string{OpD} }

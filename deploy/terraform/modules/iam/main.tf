data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# The coordinator's only permissions: exactly the AWS operations Shoal's code
# calls (deploy/check proves it against cloud/aws.Operations()).
resource "aws_iam_role" "coordinator" {
  name               = "${var.name}-coordinator"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "coordinator" {
  name = "${var.name}-coordinator"
  role = aws_iam_role.coordinator.id
  policy = templatefile("${path.module}/../../../iam/coordinator-policy.json.tftpl", {
    partition      = data.aws_partition.current.partition
    region         = data.aws_region.current.name
    account_id     = data.aws_caller_identity.current.account_id
    group_prefix   = var.group_prefix
    alarm_prefix   = "${var.name}-"
    agent_role_arn = aws_iam_role.agent.arn
  })
}

resource "aws_iam_instance_profile" "coordinator" {
  name = "${var.name}-coordinator"
  role = aws_iam_role.coordinator.name
}

# The agent needs no AWS permission at all: its identity, group and
# coordinators come from instance metadata. The role exists so the instance
# profile is explicit, and carries no policy.
resource "aws_iam_role" "agent" {
  name               = "${var.name}-agent"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_instance_profile" "agent" {
  name = "${var.name}-agent"
  role = aws_iam_role.agent.name
}

# Auto Scaling acts through this role. It is made on first use only when the
# caller may create it; the coordinator may not (iam:CreateServiceLinkedRole
# is not an operation Shoal calls), so an empty account gets it here.
resource "aws_iam_service_linked_role" "autoscaling" {
  count            = var.create_service_linked_role ? 1 : 0
  aws_service_name = "autoscaling.amazonaws.com"
}

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

# The coordinator daemon's only permissions: exactly the AWS operations
# `serve` calls (cli.ServeAWSOperations), plus reading this cluster's secrets
# at boot (deploy/systemd/shoal-coordinator-secrets) and putting its
# scheduled snapshots in S3 (deploy/systemd/shoal-snapshot-upload).
# deploy/check proves it.
resource "aws_iam_role" "coordinator" {
  name               = "${var.name}-coordinator"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "coordinator" {
  name = "${var.name}-coordinator"
  role = aws_iam_role.coordinator.id
  policy = templatefile("${path.module}/../../../iam/coordinator-policy.json.tftpl", {
    partition       = data.aws_partition.current.partition
    region          = data.aws_region.current.name
    account_id      = data.aws_caller_identity.current.account_id
    group_prefix    = var.group_prefix
    alarm_prefix    = "${var.name}-"
    secrets_path    = var.secrets_path
    secrets_key_arn = aws_kms_key.secrets.arn
    snapshot_bucket = var.snapshot_bucket
    cluster_name    = var.name
  })
}

# Session Manager shells on coordinators and shoal-lb instances, the
# troubleshooting path (no bastion, no SSH keys): exactly what the SSM
# agent needs for sessions, nothing of Shoal's. The image carries the agent
# (deploy/packer).
resource "aws_iam_role_policy" "coordinator_ssm" {
  count  = var.ssm_sessions ? 1 : 0
  name   = "${var.name}-coordinator-ssm-sessions"
  role   = aws_iam_role.coordinator.id
  policy = templatefile("${path.module}/../../../iam/ssm-session-policy.json.tftpl", {})
}

resource "aws_iam_role_policy" "lb_ssm" {
  count  = var.ssm_sessions ? 1 : 0
  name   = "${var.name}-lb-ssm-sessions"
  role   = aws_iam_role.lb.id
  policy = templatefile("${path.module}/../../../iam/ssm-session-policy.json.tftpl", {})
}

resource "aws_iam_instance_profile" "coordinator" {
  name = "${var.name}-coordinator"
  role = aws_iam_role.coordinator.name
}

# shoal-lb's only permission: reading its certificate and key at boot
# (deploy/systemd/shoal-lb-secrets), under <secrets_path>/lb/ only, never
# the CA key or a server's key. deploy/check proves it.
resource "aws_iam_role" "lb" {
  name               = "${var.name}-lb"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "lb" {
  name = "${var.name}-lb"
  role = aws_iam_role.lb.id
  policy = templatefile("${path.module}/../../../iam/lb-policy.json.tftpl", {
    partition       = data.aws_partition.current.partition
    region          = data.aws_region.current.name
    account_id      = data.aws_caller_identity.current.account_id
    secrets_path    = var.secrets_path
    secrets_key_arn = aws_kms_key.secrets.arn
  })
}

resource "aws_iam_instance_profile" "lb" {
  name = "${var.name}-lb"
  role = aws_iam_role.lb.name
}

# `fleet bootstrap` runs as this role: baking images, making launch
# templates and groups is never the daemon's business, so a compromised
# coordinator cannot launch instances or pass roles. Exactly the operations
# of cli.BootstrapAWSOperations, and what AWS checks inside them.
data "aws_iam_policy_document" "operator_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type = "AWS"
      # No list given: any identity of this account that its own IAM policy
      # lets assume the role.
      identifiers = length(var.operator_principals) > 0 ? var.operator_principals : ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = "${var.name}-operator"
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "operator" {
  name = "${var.name}-operator"
  role = aws_iam_role.operator.id
  policy = templatefile("${path.module}/../../../iam/operator-policy.json.tftpl", {
    partition      = data.aws_partition.current.partition
    region         = data.aws_region.current.name
    account_id     = data.aws_caller_identity.current.account_id
    group_prefix   = var.group_prefix
    agent_role_arn = aws_iam_role.agent.arn
    alarm_prefix   = "${var.name}-"
  })
}

# The key of this cluster's SSM SecureString parameters (CA key, server
# certificates and keys). Terraform never sees the secrets: an operator puts
# them with `aws ssm put-parameter --key-id <alias>` (deploy/README.md).
resource "aws_kms_key" "secrets" {
  description         = "${var.name}: Shoal coordinator secrets in SSM"
  enable_key_rotation = true
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
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

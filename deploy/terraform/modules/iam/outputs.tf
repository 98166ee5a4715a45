output "coordinator_instance_profile_name" {
  description = "Instance profile of the coordinators."
  value       = aws_iam_instance_profile.coordinator.name
}

output "lb_instance_profile_name" {
  description = "Instance profile of the shoal-lb instances (reads their certificates from SSM)."
  value       = aws_iam_instance_profile.lb.name
}

output "agent_instance_profile_name" {
  description = "Instance profile of fleet instances (no permissions)."
  value       = aws_iam_instance_profile.agent.name
}

output "coordinator_role_arn" {
  description = "Coordinator role ARN."
  value       = aws_iam_role.coordinator.arn
}

output "operator_role_arn" {
  description = "Role `fleet bootstrap` runs as (AWS_PROFILE with role_arn, or aws sts assume-role)."
  value       = aws_iam_role.operator.arn
}

output "secrets_key_alias" {
  description = "KMS alias to encrypt the cluster's SSM secrets with."
  value       = aws_kms_alias.secrets.name
}

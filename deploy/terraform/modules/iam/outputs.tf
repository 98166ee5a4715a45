output "coordinator_instance_profile_name" {
  description = "Instance profile of the coordinators."
  value       = aws_iam_instance_profile.coordinator.name
}

output "agent_instance_profile_name" {
  description = "Instance profile of fleet instances (no permissions)."
  value       = aws_iam_instance_profile.agent.name
}

output "coordinator_role_arn" {
  description = "Coordinator role ARN."
  value       = aws_iam_role.coordinator.arn
}

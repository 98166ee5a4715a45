output "coordinator_sg_id" {
  description = "Security group of the coordinators."
  value       = aws_security_group.coordinators.id
}

output "fleet_sg_id" {
  description = "Security group of fleet instances (agents)."
  value       = aws_security_group.fleet.id
}

output "lb_sg_id" {
  description = "Security group of shoal-lb instances."
  value       = aws_security_group.lb.id
}

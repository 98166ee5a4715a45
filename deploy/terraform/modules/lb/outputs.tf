output "dns_name" {
  description = "Public DNS name of the Network Load Balancer."
  value       = aws_lb.this.dns_name
}

output "instance_ids" {
  description = "shoal-lb instance ids."
  value       = aws_instance.lb[*].id
}

output "nlb_security_group_id" {
  description = "Security group of the NLB; the coordinators admit it on the control port."
  value       = aws_security_group.nlb.id
}

output "private_ips" {
  description = "Coordinator private addresses, node 0 first."
  value       = local.ips
}

output "instance_ids" {
  description = "Coordinator instance ids."
  value       = aws_instance.coordinator[*].id
}

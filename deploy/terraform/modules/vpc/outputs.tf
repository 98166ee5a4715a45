output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnet ids, in AZ order."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnet ids, in AZ order."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Private subnet CIDRs, in AZ order."
  value       = aws_subnet.private[*].cidr_block
}

output "default_security_group_id" {
  description = "The VPC's default security group (what instances get when their launch template names none)."
  value       = aws_vpc.this.default_security_group_id
}

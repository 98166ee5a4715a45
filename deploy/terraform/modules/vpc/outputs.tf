output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnet ids, in AZ order; ready only once their route to the internet gateway is, so an internet-facing NLB made in them never meets a VPC without a gateway (InvalidSubnet)."
  value       = aws_subnet.public[*].id
  depends_on  = [aws_route_table_association.public, aws_route_table.public, aws_internet_gateway.this]
}

output "private_subnet_ids" {
  description = "Private subnet ids, in AZ order."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Private subnet CIDRs, in AZ order."
  value       = aws_subnet.private[*].cidr_block
}

variable "name" {
  description = "Name prefix."
  type        = string
}

variable "fleet_name" {
  description = "Shoal fleet shoal-lb serves."
  type        = string
}

variable "ami_id" {
  description = "Shoal AMI."
  type        = string
}

variable "instance_type" {
  description = "shoal-lb instance type."
  type        = string
}

variable "instance_count" {
  description = "shoal-lb instances."
  type        = number
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the Network Load Balancer."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnets of the shoal-lb instances."
  type        = list(string)
}

variable "security_group_id" {
  description = "shoal-lb security group."
  type        = string
}

variable "coordinators" {
  description = "Coordinator gRPC addresses for the backend feed."
  type        = list(string)
}

variable "lb_port" {
  description = "shoal-lb listener port."
  type        = number
}

variable "listener_port" {
  description = "NLB listener port."
  type        = number
}

variable "instance_profile_name" {
  description = "Instance profile of the shoal-lb instances (reads their certificates from SSM)."
  type        = string
}

variable "secrets_path" {
  description = "SSM parameter path of the cluster's secrets (no trailing slash); each LB reads <path>/lb/<name>/{cert,key}."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC CIDR: where the NLB's targets are."
  type        = string
}

variable "client_cidrs" {
  description = "Who may reach listener_port."
  type        = list(string)
}

variable "operator_cidrs" {
  description = "Who may reach control_port (the coordinators' control API); empty: nobody."
  type        = list(string)
}

variable "control_port" {
  description = "Coordinators' --rpc-addr port, published on the NLB for operators."
  type        = number
}

variable "coordinator_instance_ids" {
  description = "Coordinator instances behind the control listener."
  type        = list(string)
}

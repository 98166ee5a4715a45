variable "name" {
  description = "Name prefix."
  type        = string
}

variable "group_name" {
  description = "Auto Scaling group (and launch template) name; must start with the prefix the coordinator's IAM policy admits."
  type        = string
}

variable "ami_id" {
  description = "Shoal AMI (agent and demoapp start at boot)."
  type        = string
}

variable "instance_type" {
  description = "Fleet instance type."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the group launches into."
  type        = list(string)
}

variable "security_group_id" {
  description = "Fleet security group."
  type        = string
}

variable "instance_profile_name" {
  description = "Agent instance profile (no permissions)."
  type        = string
}

variable "coordinators" {
  description = "Coordinator agent addresses (--agent-addr); propagated as the shoal:coordinators tag the agent reads from IMDS."
  type        = list(string)
}

variable "min_size" {
  description = "Group MinSize."
  type        = number
}

variable "max_size" {
  description = "Group MaxSize."
  type        = number
}

variable "create_group" {
  description = "Create the launch template and group (false when `fleet bootstrap` makes them)."
  type        = bool
}

variable "create_golden_instance" {
  description = "Run one instance to bootstrap a fleet from."
  type        = bool
}

variable "drain_timeout_seconds" {
  description = "How long the TERMINATING lifecycle hook holds an instance while Shoal drains it."
  type        = number
  default     = 120
}

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
  description = "Heartbeat timeout of the TERMINATING lifecycle hook (30-7200 s); Shoal heartbeats it while it drains and leaves it as set here."
  type        = number
  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "drain_timeout_seconds must be between 30 and 7200."
  }
}

variable "app_port" {
  description = "Port the application listens on (shoal-demoapp --listen) and the agent scrapes."
  type        = number
}

variable "name" {
  description = "Name prefix."
  type        = string
}

variable "ami_id" {
  description = "Shoal AMI."
  type        = string
}

variable "instance_type" {
  description = "Coordinator instance type."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets; coordinators are spread over them."
  type        = list(string)
}

variable "subnet_cidrs" {
  description = "CIDRs of subnet_ids, in the same order (fixed addresses are picked from them)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Coordinator security group."
  type        = string
}

variable "instance_profile_name" {
  description = "Coordinator instance profile."
  type        = string
}

variable "region" {
  description = "Region the coordinators call AWS in."
  type        = string
}

variable "grpc_port" {
  description = "gRPC port (--rpc-addr)."
  type        = number
}

variable "agent_port" {
  description = "Agent port (--agent-addr)."
  type        = number
}

variable "secrets_path" {
  description = "SSM path of the cluster's secrets, read at every start by shoal-coordinator-secrets."
  type        = string
}

variable "raft_port" {
  description = "Raft port (--raft-addr)."
  type        = number
}

variable "http_port" {
  description = "Metrics port (--http-addr)."
  type        = number
}

variable "node_count" {
  description = "Coordinators; 3 tolerates one failure."
  type        = number
  default     = 3
}

variable "data_volume_size" {
  description = "GiB of each node's data volume."
  type        = number
}

variable "snapshot_bucket" {
  description = "S3 bucket scheduled snapshots are copied to."
  type        = string
}

variable "snapshot_interval" {
  description = "serve --snapshot-interval (a Go duration, e.g. 1h)."
  type        = string
}

variable "snapshot_retention_days" {
  description = "Days a snapshot stays in the bucket."
  type        = number
  default     = 30
}

variable "hook_heartbeat" {
  description = "Seconds of heartbeat timeout for a TERMINATING hook the scaler puts on a group that lacks one (serve --hook-heartbeat)."
  type        = number
}

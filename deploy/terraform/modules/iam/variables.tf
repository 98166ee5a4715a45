variable "name" {
  description = "Name prefix of the roles."
  type        = string
}

variable "group_prefix" {
  description = "Auto Scaling groups the coordinator may change are named with this prefix."
  type        = string
}

variable "create_service_linked_role" {
  description = "Create the Auto Scaling service-linked role (once per account)."
  type        = bool
}

variable "operator_principals" {
  description = "IAM principals (ARNs) that may assume the operator role for `fleet bootstrap`; empty: any identity of this account allowed to by its own policy."
  type        = list(string)
}

variable "secrets_path" {
  description = "SSM parameter path of the cluster's secrets (no trailing slash); the coordinators may read only below it."
  type        = string
}

variable "snapshot_bucket" {
  description = "S3 bucket of the scheduled snapshots; coordinators may put objects under <name>/ only."
  type        = string
}

variable "ssm_sessions" {
  description = "Give coordinators and shoal-lb instances the SSM agent's session permissions."
  type        = bool
}

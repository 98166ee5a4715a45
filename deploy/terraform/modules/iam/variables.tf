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

variable "name" {
  description = "Name prefix of the roles."
  type        = string
}

variable "group_prefix" {
  description = "Auto Scaling groups the coordinator may change are named with this prefix."
  type        = string
}

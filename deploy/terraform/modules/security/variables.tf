variable "name" {
  description = "Name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC the groups belong to."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC CIDR (NLB health checks come from inside it)."
  type        = string
}

variable "grpc_port" {
  description = "Coordinator control (gRPC) port: operators, shoal-lb and peers only."
  type        = number
}

variable "agent_port" {
  description = "Coordinator agent port (--agent-addr): the only one the fleet reaches."
  type        = number
}

variable "raft_port" {
  description = "Coordinator raft port."
  type        = number
}

variable "http_port" {
  description = "Coordinator metrics port."
  type        = number
}

variable "app_port" {
  description = "Application port on fleet instances."
  type        = number
}

variable "lb_port" {
  description = "shoal-lb listener port."
  type        = number
}

variable "client_cidrs" {
  description = "Clients allowed to reach shoal-lb through the NLB."
  type        = list(string)
}

variable "operator_cidrs" {
  description = "Operators allowed to reach the coordinators' gRPC and metrics ports."
  type        = list(string)
}

variable "bootstrap_sg_id" {
  description = "Security group that instances from a `fleet bootstrap` launch template get (the VPC default; bootstrap names none); admitted like the fleet's."
  type        = string
}

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

variable "nlb_sg_id" {
  description = "Security group of the Network Load Balancer, whose control listener carries operators' CLI traffic to the coordinators."
  type        = string
}

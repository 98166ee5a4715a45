variable "region" {
  description = "AWS region to run Shoal in."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource; Auto Scaling groups Shoal may act on are named <name>-<fleet>, and the IAM policies admit only <name>-*."
  type        = string
  default     = "shoal"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "ami_id" {
  description = "AMI built by deploy/packer (shoal-agent, shoal-demoapp, shoal-coordinator and shoal-lb baked in)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread subnets over (2 or 3)."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3."
  }
}

variable "public_subnet_cidrs" {
  description = "One public subnet CIDR per AZ (NAT gateways and the Network Load Balancer)."
  type        = list(string)
  default     = ["10.40.0.0/24", "10.40.1.0/24", "10.40.2.0/24"]
}

variable "private_subnet_cidrs" {
  description = "One private subnet CIDR per AZ (coordinators, shoal-lb, the fleet)."
  type        = list(string)
  default     = ["10.40.16.0/20", "10.40.32.0/20", "10.40.48.0/20"]
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = false
}

variable "coordinator_instance_type" {
  description = "Instance type of the three coordinators."
  type        = string
  default     = "t3.small"
}

variable "lb_instance_type" {
  description = "Instance type of the shoal-lb instances."
  type        = string
  default     = "t3.small"
}

variable "lb_count" {
  description = "shoal-lb instances behind the Network Load Balancer."
  type        = number
  default     = 2
}

variable "fleet_instance_type" {
  description = "Instance type of the fleet."
  type        = string
  default     = "t3.micro"
}

variable "fleet_name" {
  description = "Shoal fleet name that shoal-lb serves; its Auto Scaling group is <name>-<fleet_name> (bootstrap_command passes --asg)."
  type        = string
  default     = "web"
}

variable "fleet_min" {
  description = "Fewest fleet instances (the group's MinSize and Shoal's min)."
  type        = number
  default     = 2
}

variable "fleet_max" {
  description = "Most fleet instances (the group's MaxSize and Shoal's max)."
  type        = number
  default     = 8
  validation {
    condition     = var.fleet_max >= 1
    error_message = "fleet_max must be >= 1."
  }
}

variable "app_port" {
  description = "Port the application (shoal-demoapp) listens on in the fleet."
  type        = number
  default     = 8080
}

variable "scaling_metric" {
  description = "Metric of the fleet's target-tracking policy: cpu, mem, load1, net_rx, net_tx, disk, requests_per_target or a custom name such as demoapp_utilization."
  type        = string
  default     = "cpu"
}

variable "scaling_target" {
  description = "Target value of scaling_metric."
  type        = number
  default     = 50
}

variable "grpc_port" {
  description = "Coordinator --rpc-addr port: control API, LB feed and peers; reachable only from operators, shoal-lb and other coordinators."
  type        = number
  default     = 7400
}

variable "agent_port" {
  description = "Coordinator --agent-addr port: agent enrollment and streams, the only coordinator port the fleet may reach."
  type        = number
  default     = 7403
}

variable "raft_port" {
  description = "Coordinator raft port; open only between coordinators."
  type        = number
  default     = 7401
}

variable "coordinator_http_port" {
  description = "Coordinator /metrics and /healthz port."
  type        = number
  default     = 7402
}

variable "lb_port" {
  description = "Port shoal-lb listens on; the Network Load Balancer forwards listener_port to it."
  type        = number
  default     = 8080
}

variable "listener_port" {
  description = "Public port of the Network Load Balancer."
  type        = number
  default     = 80
}

variable "client_cidrs" {
  description = "Who may reach the load balancer. The NLB preserves client addresses, so shoal-lb's security group admits these."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "operator_cidrs" {
  description = "Public addresses operators run shoal-coordinator CLI commands from (an office or VPN egress range): the NLB's control listener admits only these, and the CLI still needs an operator certificate and a token. Empty admits nobody."
  type        = list(string)
  default     = []
}

variable "ssm_sessions" {
  description = "Let operators open SSM Session Manager shells on coordinators and shoal-lb instances (troubleshooting without a bastion or SSH keys)."
  type        = bool
  default     = true
}

variable "coordinator_data_volume_size" {
  description = "GiB of each coordinator's data volume (raft log, snapshots); it outlives the instance and is reattached to its replacement."
  type        = number
  default     = 20
}

variable "snapshot_interval" {
  description = "How often each coordinator writes its state to a file (serve --snapshot-interval); a timer copies the newest to S3."
  type        = string
  default     = "1h"
}

variable "drain_timeout_seconds" {
  description = "Heartbeat timeout of the fleet's TERMINATING lifecycle hook, which Shoal keeps alive by heartbeats while it drains; AWS accepts 30-7200."
  type        = number
  default     = 120
  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "drain_timeout_seconds must be between 30 and 7200 (AWS's limits for a lifecycle hook heartbeat)."
  }
}

variable "create_fleet_group" {
  description = "Create the fleet's launch template and Auto Scaling group here (then register it with `fleet create`) instead of with `fleet bootstrap`."
  type        = bool
  default     = false
}

variable "create_autoscaling_service_linked_role" {
  description = "Create AWSServiceRoleForAutoScaling, which the account's first Auto Scaling group needs; set false if the account already has it."
  type        = bool
  default     = true
}

variable "create_golden_instance" {
  description = "Run one fleet-like instance outside the group, for `shoal-coordinator fleet bootstrap --from-instance`."
  type        = bool
  default     = true
}

variable "operator_principals" {
  description = "IAM principals (ARNs) that may assume the operator role `fleet bootstrap` runs as; empty: any identity of this account that its own IAM policy allows."
  type        = list(string)
  default     = []
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  # Groups Shoal may act on start with the stack's name: the IAM policies
  # admit only <name>-*, and bootstrap_command passes --asg <name>-<fleet>.
  group_prefix    = "${var.name}-"
  group_name      = "${local.group_prefix}${var.fleet_name}"
  coordinator_ips = module.coordinators.private_ips
  # SSM path of the cluster's secrets; the coordinator role reads only below
  # it, and each node's user data names it for shoal-coordinator-secrets.
  secrets_path = "/shoal/${var.name}"
  # Scheduled snapshots leave each coordinator for this bucket
  # (shoal-snapshot-upload.timer); the account id keeps the name unique.
  snapshot_bucket = "${var.name}-snapshots-${data.aws_caller_identity.current.account_id}"
}

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

# No aws_ec2_instance_metadata_defaults: that is a region-wide, account-wide
# setting other stacks share. Every launch path sets its own metadata
# options: the instances here, the launch template below, and `fleet
# bootstrap`'s launch template (IMDSv2 required, tags in metadata).

module "vpc" {
  source               = "./modules/vpc"
  name                 = var.name
  cidr                 = var.vpc_cidr
  azs                  = local.azs
  public_subnet_cidrs  = slice(var.public_subnet_cidrs, 0, var.az_count)
  private_subnet_cidrs = slice(var.private_subnet_cidrs, 0, var.az_count)
  single_nat_gateway   = var.single_nat_gateway
}

module "security" {
  source       = "./modules/security"
  name         = var.name
  vpc_id       = module.vpc.vpc_id
  vpc_cidr     = var.vpc_cidr
  grpc_port    = var.grpc_port
  agent_port   = var.agent_port
  raft_port    = var.raft_port
  app_port     = var.app_port
  lb_port      = var.lb_port
  client_cidrs = var.client_cidrs
  nlb_sg_id    = module.lb.nlb_security_group_id
}

module "iam" {
  source                     = "./modules/iam"
  name                       = var.name
  group_prefix               = local.group_prefix
  create_service_linked_role = var.create_autoscaling_service_linked_role
  operator_principals        = var.operator_principals
  secrets_path               = local.secrets_path
  snapshot_bucket            = local.snapshot_bucket
  ssm_sessions               = var.ssm_sessions
}

module "coordinators" {
  source                = "./modules/coordinators"
  name                  = var.name
  ami_id                = var.ami_id
  instance_type         = var.coordinator_instance_type
  subnet_ids            = module.vpc.private_subnet_ids
  subnet_cidrs          = module.vpc.private_subnet_cidrs
  security_group_id     = module.security.coordinator_sg_id
  instance_profile_name = module.iam.coordinator_instance_profile_name
  region                = var.region
  grpc_port             = var.grpc_port
  agent_port            = var.agent_port
  raft_port             = var.raft_port
  http_port             = var.coordinator_http_port
  secrets_path          = local.secrets_path
  data_volume_size      = var.coordinator_data_volume_size
  snapshot_bucket       = local.snapshot_bucket
  snapshot_interval     = var.snapshot_interval
  hook_heartbeat        = var.drain_timeout_seconds
}

module "fleet" {
  source                = "./modules/fleet"
  name                  = var.name
  group_name            = local.group_name
  ami_id                = var.ami_id
  instance_type         = var.fleet_instance_type
  subnet_ids            = module.vpc.private_subnet_ids
  security_group_id     = module.security.fleet_sg_id
  instance_profile_name = module.iam.agent_instance_profile_name
  # Agents reach only the agent listener (--agent-addr).
  coordinators           = [for ip in local.coordinator_ips : "${ip}:${var.agent_port}"]
  min_size               = var.fleet_min
  max_size               = var.fleet_max
  create_group           = var.create_fleet_group
  create_golden_instance = var.create_golden_instance
  app_port               = var.app_port
  drain_timeout_seconds  = var.drain_timeout_seconds
}

module "lb" {
  source            = "./modules/lb"
  name              = var.name
  fleet_name        = var.fleet_name
  ami_id            = var.ami_id
  instance_type     = var.lb_instance_type
  instance_count    = var.lb_count
  vpc_id            = module.vpc.vpc_id
  vpc_cidr          = var.vpc_cidr
  public_subnet_ids = module.vpc.public_subnet_ids
  subnet_ids        = module.vpc.private_subnet_ids
  security_group_id = module.security.lb_sg_id
  coordinators      = [for ip in local.coordinator_ips : "${ip}:${var.grpc_port}"]
  lb_port           = var.lb_port
  listener_port     = var.listener_port
  client_cidrs      = var.client_cidrs
  # Operators reach the coordinators' control port through the NLB, from
  # operator_cidrs only; the agent port stays private.
  operator_cidrs           = var.operator_cidrs
  control_port             = var.grpc_port
  coordinator_instance_ids = module.coordinators.instance_ids
  # Each LB's certificate and key, read at boot by shoal-lb-secrets.
  instance_profile_name = module.iam.lb_instance_profile_name
  secrets_path          = local.secrets_path
}

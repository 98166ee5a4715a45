locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  # Shoal names groups shoal-<fleet> (fleet bootstrap's default), and the
  # coordinator's IAM policy admits only groups with that prefix.
  group_prefix    = "shoal-"
  group_name      = "${local.group_prefix}${var.fleet_name}"
  coordinator_ips = module.coordinators.private_ips
  # SSM path of the cluster's secrets; the coordinator role reads only below
  # it, and each node's user data names it for shoal-coordinator-secrets.
  secrets_path = "/shoal/${var.name}"
}

data "aws_availability_zones" "available" {
  state = "available"
}

# Every instance in the region, whoever launches it (Terraform, Auto Scaling,
# or `fleet bootstrap`), requires IMDSv2, stays one hop from IMDS and exposes
# its tags there: the agent reads shoal:coordinators from instance metadata.
resource "aws_ec2_instance_metadata_defaults" "imds" {
  http_tokens                 = "required"
  http_put_response_hop_limit = 1
  instance_metadata_tags      = "enabled"
}

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
  source          = "./modules/security"
  name            = var.name
  vpc_id          = module.vpc.vpc_id
  vpc_cidr        = var.vpc_cidr
  grpc_port       = var.grpc_port
  agent_port      = var.agent_port
  raft_port       = var.raft_port
  http_port       = var.coordinator_http_port
  app_port        = var.app_port
  lb_port         = var.lb_port
  client_cidrs    = var.client_cidrs
  operator_cidrs  = var.operator_cidrs
  bootstrap_sg_id = module.vpc.default_security_group_id
}

module "iam" {
  source                     = "./modules/iam"
  name                       = var.name
  group_prefix               = local.group_prefix
  create_service_linked_role = var.create_autoscaling_service_linked_role
  operator_principals        = var.operator_principals
  secrets_path               = local.secrets_path
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
}

module "lb" {
  source            = "./modules/lb"
  name              = var.name
  fleet_name        = var.fleet_name
  ami_id            = var.ami_id
  instance_type     = var.lb_instance_type
  instance_count    = var.lb_count
  vpc_id            = module.vpc.vpc_id
  public_subnet_ids = module.vpc.public_subnet_ids
  subnet_ids        = module.vpc.private_subnet_ids
  security_group_id = module.security.lb_sg_id
  coordinators      = [for ip in local.coordinator_ips : "${ip}:${var.grpc_port}"]
  lb_port           = var.lb_port
  listener_port     = var.listener_port
  # Each LB's certificate and key, read at boot by shoal-lb-secrets.
  instance_profile_name = module.iam.lb_instance_profile_name
  secrets_path          = local.secrets_path
}

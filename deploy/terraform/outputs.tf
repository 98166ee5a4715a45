output "lb_dns_name" {
  description = "Open http://<this>/ to reach the fleet through the NLB and shoal-lb."
  value       = module.lb.dns_name
}

output "coordinator_addresses" {
  description = "Coordinator --rpc-addr endpoints inside the VPC (shoal-lb and peers use them)."
  value       = [for ip in local.coordinator_ips : "${ip}:${var.grpc_port}"]
}

output "control_address" {
  description = "The control API through the NLB, from operator_cidrs only: export SHOAL_ADDR=<this> with an operator certificate and a token."
  value       = "${module.lb.dns_name}:${var.grpc_port}"
}

output "coordinator_instance_ids" {
  description = "For `aws ssm start-session --target <id>` and deploy/terraform/roll-coordinators.sh."
  value       = module.coordinators.instance_ids
}

output "snapshot_bucket" {
  description = "S3 bucket the coordinators' scheduled snapshots are copied to (<name>/<node-id>/...)."
  value       = local.snapshot_bucket
}

output "fleet_group_name" {
  description = "Auto Scaling group of the fleet shoal-lb serves (created here only with create_fleet_group)."
  value       = local.group_name
}

output "golden_instance_id" {
  description = "Instance to bootstrap a fleet from (empty when create_golden_instance is false)."
  value       = module.fleet.golden_instance_id
}

output "private_subnet_ids" {
  description = "Private subnets, for --subnets."
  value       = module.vpc.private_subnet_ids
}

output "fleet_create_command" {
  description = "With create_fleet_group: registers the Terraform-made group as a Shoal fleet with its policy."
  value       = "shoal-coordinator fleet create ${var.fleet_name} --asg ${local.group_name} --min ${var.fleet_min} --max ${var.fleet_max} --app-port ${var.app_port} && shoal-coordinator policy set ${var.fleet_name} --metric ${var.scaling_metric} --target ${var.scaling_target}"
}

output "operator_role_arn" {
  description = "Role to run `fleet bootstrap` as; the coordinators' own role cannot make images, templates or groups."
  value       = module.iam.operator_role_arn
}

output "secrets_path" {
  description = "SSM path under which to put the CA key and each coordinator's certificate and key (deploy/README.md)."
  value       = local.secrets_path
}

output "secrets_key_alias" {
  description = "KMS key alias to encrypt those SecureString parameters with."
  value       = module.iam.secrets_key_alias
}

output "teardown_command" {
  description = "Before terraform destroy: deletes the fleet and everything fleet bootstrap made for it (group, launch template, image and its snapshots, alarms). Run it as operator_role_arn; after terraform destroy, ./teardown.sh alarms."
  value       = "./teardown.sh fleet ${var.fleet_name}"
}

output "bootstrap_command" {
  description = "Without create_fleet_group: makes the fleet from the golden instance (image, launch template, group, hook, policy). Run it as operator_role_arn."
  value       = "shoal-coordinator fleet bootstrap ${var.fleet_name} --from-instance ${module.fleet.golden_instance_id} --subnets ${join(",", module.vpc.private_subnet_ids)} --asg ${local.group_name} --launch-template ${local.group_name} --min ${var.fleet_min} --max ${var.fleet_max} --metric ${var.scaling_metric} --target ${var.scaling_target} --app-port ${var.app_port} --instance-type ${var.fleet_instance_type} --hook-heartbeat ${var.drain_timeout_seconds}s"
}

output "group_name" {
  description = "Auto Scaling group name (empty unless create_group)."
  value       = var.create_group ? aws_autoscaling_group.fleet[0].name : ""
}

output "launch_template_id" {
  description = "Launch template id (empty unless create_group)."
  value       = var.create_group ? aws_launch_template.fleet[0].id : ""
}

output "golden_instance_id" {
  description = "Golden instance id (empty unless create_golden_instance)."
  value       = var.create_golden_instance ? aws_instance.golden[0].id : ""
}

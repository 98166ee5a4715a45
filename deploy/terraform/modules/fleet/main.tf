locals {
  coordinators_tag = join(",", var.coordinators)
  # app_port reaches shoal-demoapp's --listen and the agent's scrape URL.
  app_user_data = templatefile("${path.module}/app-port.sh.tftpl", { app_port = var.app_port })
}

resource "aws_launch_template" "fleet" {
  count                  = var.create_group ? 1 : 0
  name                   = var.group_name
  image_id               = var.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [var.security_group_id]
  update_default_version = true
  user_data              = base64encode(local.app_user_data)
  iam_instance_profile {
    name = var.instance_profile_name
  }
  # The agent reads its group and shoal:coordinators from instance metadata
  # tags; hop limit 1 keeps IMDS out of reach of containers on the host.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }
  tag_specifications {
    resource_type = "instance"
    tags = {
      Name = var.group_name
    }
  }
}

resource "aws_autoscaling_group" "fleet" {
  count               = var.create_group ? 1 : 0
  name                = var.group_name
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  launch_template {
    id      = aws_launch_template.fleet[0].id
    version = aws_launch_template.fleet[0].latest_version
  }
  # Shoal drains an instance before letting it go.
  initial_lifecycle_hook {
    name                 = "shoal-drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_seconds
  }
  tag {
    key                 = "shoal:coordinators"
    value               = local.coordinators_tag
    propagate_at_launch = true
  }
  # Shoal owns the desired capacity from here on.
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# A running instance of the image, for `fleet bootstrap --from-instance`: the
# console's "create image from instance" starting point.
resource "aws_instance" "golden" {
  count                  = var.create_golden_instance ? 1 : 0
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[0]
  vpc_security_group_ids = [var.security_group_id]
  iam_instance_profile   = var.instance_profile_name
  user_data              = local.app_user_data
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }
  tags = {
    Name                 = "${var.group_name}-golden"
    "shoal:coordinators" = local.coordinators_tag
  }
}

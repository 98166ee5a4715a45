# Fixed private addresses make the cluster's membership static: each node's
# user data names its peers before any of them exists, and a replaced
# instance comes back with the same address and node id.
locals {
  ips = [for i in range(var.node_count) : cidrhost(var.subnet_cidrs[i % length(var.subnet_cidrs)], 10 + floor(i / length(var.subnet_cidrs)))]
}

resource "aws_instance" "coordinator" {
  count                  = var.node_count
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  private_ip             = local.ips[count.index]
  vpc_security_group_ids = [var.security_group_id]
  iam_instance_profile   = var.instance_profile_name
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    node_id = "${var.name}-coordinator-${count.index}"
    # Prefix of the cluster's CloudWatch alarms; the IAM policy admits
    # only alarms named "<name>-…".
    cluster_name = var.name
    ip           = local.ips[count.index]
    region       = var.region
    grpc_port    = var.grpc_port
    agent_port   = var.agent_port
    raft_port    = var.raft_port
    http_port    = var.http_port
    secrets_path = var.secrets_path
    # Node 0 forms the cluster; the others ask it (or any member) to join.
    cluster_flags = count.index == 0 ? "--bootstrap" : "--join ${join(",", [for ip in local.ips : "${ip}:${var.grpc_port}" if ip != local.ips[count.index]])}"
  })
  user_data_replace_on_change = true
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }
  root_block_device {
    volume_size = 16
    encrypted   = true
  }
  tags = {
    Name = "${var.name}-coordinator-${count.index}"
  }
}

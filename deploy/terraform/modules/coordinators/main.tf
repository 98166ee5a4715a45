# Fixed private addresses keep the retry-join list static: each node's user
# data names its peers before any of them exists, and a replaced instance
# comes back with the same address and node id. (A node that does come back
# at a new address rejoins too: deploy/e2e/replace tests it.)
locals {
  ips = [for i in range(var.node_count) : cidrhost(var.subnet_cidrs[i % length(var.subnet_cidrs)], 10 + floor(i / length(var.subnet_cidrs)))]
}

data "aws_subnet" "coordinator" {
  count = var.node_count
  id    = var.subnet_ids[count.index % length(var.subnet_ids)]
}

# Each node's raft log and snapshots live on their own volume, which
# outlives the instance: nothing of the instance's feeds it, so replacing an
# instance replaces only the attachment, and the replacement gets the volume
# back and rejoins with its state. Only `terraform destroy` deletes it.
resource "aws_ebs_volume" "data" {
  count             = var.node_count
  availability_zone = data.aws_subnet.coordinator[count.index].availability_zone
  size              = var.data_volume_size
  type              = "gp3"
  encrypted         = true
  tags = {
    Name         = "${var.name}-coordinator-${count.index}-data"
    "shoal:node" = "${var.name}-coordinator-${count.index}"
  }
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
    # The same on every node and safe to leave in place: a node with state
    # (its volume) or that finds a cluster joins it; only node_count fresh
    # nodes that find each other form one.
    cluster_flags = "--bootstrap-expect ${var.node_count} --join ${join(",", [for ip in local.ips : "${ip}:${var.grpc_port}" if ip != local.ips[count.index]])} --snapshot-dir /var/lib/shoal-coordinator/snapshots --snapshot-interval ${var.snapshot_interval} --hook-heartbeat ${var.hook_heartbeat}s"
    # The data volume, found by its id under /dev/disk/by-id.
    volume_id       = aws_ebs_volume.data[count.index].id
    snapshot_bucket = var.snapshot_bucket
  })
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
  # A new AMI or user data never replaces the three at once: replace them
  # one at a time with deploy/terraform/roll-coordinators.sh, which waits for
  # each to rejoin and catch up (deploy/README.md, "Replacing coordinators").
  lifecycle {
    ignore_changes = [ami, user_data]
  }
}

resource "aws_volume_attachment" "data" {
  count       = var.node_count
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.coordinator[count.index].id
  # Stop the instance (the coordinator leaves cleanly, handing over
  # leadership) before the volume is taken from it.
  stop_instance_before_detaching = true
}

# Scheduled snapshots leave the instances for here (shoal-snapshot-upload),
# so losing every node and every volume is recoverable with `snapshot
# restore` on a fresh cluster.
resource "aws_s3_bucket" "snapshots" {
  bucket = var.snapshot_bucket
}

resource "aws_s3_bucket_public_access_block" "snapshots" {
  bucket                  = aws_s3_bucket.snapshots.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id
  rule {
    id     = "expire-old-snapshots"
    status = "Enabled"
    filter {}
    expiration {
      days = var.snapshot_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }
}

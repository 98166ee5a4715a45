# L4 in front (an AWS Network Load Balancer: static addresses, TLS offload if
# wanted, cross-zone), Shoal's L7 behind it (per-request gRPC balancing,
# draining fed by the coordinator).

# The public subnets come from modules/vpc only once their route to the
# internet gateway exists (its output depends on it): an internet-facing NLB
# created before that fails with InvalidSubnet.
resource "aws_lb" "this" {
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = var.public_subnet_ids
  enable_cross_zone_load_balancing = true
  security_groups                  = [aws_security_group.nlb.id]
}

# Who may reach which listener: clients the application port, operators the
# control port. Targets admit this group, not outside CIDRs.
resource "aws_security_group" "nlb" {
  name        = "${var.name}-nlb"
  description = "Shoal NLB: clients on the listener port, operators on the control port"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.nlb.id
  description       = "clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.listener_port
  to_port           = var.listener_port
}

resource "aws_vpc_security_group_ingress_rule" "operators" {
  for_each          = toset(var.operator_cidrs)
  security_group_id = aws_security_group.nlb.id
  description       = "operator CLI (mTLS and a token still required)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.control_port
  to_port           = var.control_port
}

resource "aws_vpc_security_group_egress_rule" "to_targets" {
  security_group_id = aws_security_group.nlb.id
  description       = "to shoal-lb and the coordinators' control port, and health checks"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
}

# The coordinators' control port (--rpc-addr) on a second listener. TLS
# passes through untouched: the CLI verifies the coordinators' server
# certificates and presents its operator certificate end to end. The agent
# port is never published.
resource "aws_lb_target_group" "control" {
  name        = "${var.name}-control"
  port        = var.control_port
  protocol    = "TCP"
  target_type = "instance"
  vpc_id      = var.vpc_id
  # The coordinators admit the NLB's security group; with client addresses
  # preserved they would see (and have to admit) the operators' addresses.
  preserve_client_ip   = false
  deregistration_delay = 10
  health_check {
    protocol            = "TCP"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "control" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.control_port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.control.arn
  }
}

resource "aws_lb_target_group_attachment" "control" {
  count            = length(var.coordinator_instance_ids)
  target_group_arn = aws_lb_target_group.control.arn
  target_id        = var.coordinator_instance_ids[count.index]
  port             = var.control_port
}

resource "aws_lb_target_group" "lb" {
  name        = "${var.name}-shoal-lb"
  port        = var.lb_port
  protocol    = "TCP"
  target_type = "instance"
  vpc_id      = var.vpc_id
  # shoal-lb finishes in-flight requests on SIGTERM (--shutdown-grace 10s).
  deregistration_delay = 15
  health_check {
    protocol            = "TCP"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.listener_port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.lb.arn
  }
}

resource "aws_instance" "lb" {
  count                  = var.instance_count
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [var.security_group_id]
  # Reads this LB's certificate and key from SSM at boot, nothing else.
  iam_instance_profile = var.instance_profile_name
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    coordinators = join(",", var.coordinators)
    fleet        = var.fleet_name
    lb_port      = var.lb_port
    # The certificate's name (spiffe://<cluster>/lb/<name>) and its SSM
    # parameters' (<secrets_path>/lb/<name>/{cert,key}).
    lb_name      = "${var.name}-lb-${count.index}"
    secrets_path = var.secrets_path
  })
  user_data_replace_on_change = true
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  tags = {
    Name = "${var.name}-lb-${count.index}"
  }
}

resource "aws_lb_target_group_attachment" "lb" {
  count            = var.instance_count
  target_group_arn = aws_lb_target_group.lb.arn
  target_id        = aws_instance.lb[count.index].id
  port             = var.lb_port
}

# L4 in front (an AWS Network Load Balancer: static addresses, TLS offload if
# wanted, cross-zone), Shoal's L7 behind it (per-request gRPC balancing,
# draining fed by the coordinator).

resource "aws_lb" "this" {
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = var.public_subnet_ids
  enable_cross_zone_load_balancing = true
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

# Three groups, wired by reference rather than by CIDR: coordinators admit
# agents (fleet) only on the agent port, shoal-lb, the NLB's control listener
# (operators) and each other on the control (gRPC) port, and raft only from
# each other; the fleet admits
# only shoal-lb on the application port. mTLS guards every port as well: this
# is defence in depth, so a fleet instance cannot even reach the control API.

resource "aws_security_group" "coordinators" {
  name        = "${var.name}-coordinators"
  description = "Shoal coordinators: agent port from agents; gRPC from LBs, operators and peers; raft between coordinators"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "fleet" {
  name        = "${var.name}-fleet"
  description = "Shoal fleet: application port from shoal-lb only"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "shoal-lb: clients through the NLB"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "agent_from_fleet" {
  security_group_id            = aws_security_group.coordinators.id
  description                  = "agent enrollment and streams"
  referenced_security_group_id = aws_security_group.fleet.id
  ip_protocol                  = "tcp"
  from_port                    = var.agent_port
  to_port                      = var.agent_port
}

# No rule touches the VPC's default security group: `fleet bootstrap` gives
# its launch template the golden instance's groups (the fleet group here),
# so bootstrapped instances need nothing else.

resource "aws_vpc_security_group_ingress_rule" "grpc_from_lb" {
  security_group_id            = aws_security_group.coordinators.id
  description                  = "shoal-lb backend feed"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
}

resource "aws_vpc_security_group_ingress_rule" "grpc_between_coordinators" {
  security_group_id            = aws_security_group.coordinators.id
  description                  = "join requests and forwarded writes"
  referenced_security_group_id = aws_security_group.coordinators.id
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
}

resource "aws_vpc_security_group_ingress_rule" "raft" {
  security_group_id            = aws_security_group.coordinators.id
  description                  = "raft between coordinators only"
  referenced_security_group_id = aws_security_group.coordinators.id
  ip_protocol                  = "tcp"
  from_port                    = var.raft_port
  to_port                      = var.raft_port
}

# Operators reach the control port only through the NLB's control
# listener, which admits operator_cidrs (its own security group); the
# coordinators admit the NLB's group, never a CIDR from outside the VPC.
resource "aws_vpc_security_group_ingress_rule" "grpc_from_nlb" {
  security_group_id            = aws_security_group.coordinators.id
  description                  = "operator CLI through the NLB control listener"
  referenced_security_group_id = var.nlb_sg_id
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port
}

resource "aws_vpc_security_group_ingress_rule" "app_from_lb" {
  security_group_id            = aws_security_group.fleet.id
  description                  = "application traffic from shoal-lb"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
}

resource "aws_vpc_security_group_ingress_rule" "lb_from_clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "clients (the NLB preserves their addresses)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.lb_port
  to_port           = var.lb_port
}

resource "aws_vpc_security_group_ingress_rule" "lb_health_from_nlb" {
  security_group_id = aws_security_group.lb.id
  description       = "NLB health checks"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = var.lb_port
  to_port           = var.lb_port
}

# Outbound: AWS APIs and packages through NAT, coordinators, backends.
resource "aws_vpc_security_group_egress_rule" "all" {
  for_each = {
    coordinators = aws_security_group.coordinators.id
    fleet        = aws_security_group.fleet.id
    lb           = aws_security_group.lb.id
  }
  security_group_id = each.value
  description       = "outbound"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

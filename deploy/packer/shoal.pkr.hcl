# The Shoal AMI: every Shoal binary and unit, with shoal-agent and
# shoal-demoapp enabled at boot. Coordinator and LB instances start from the
# same image; their user data switches the roles (deploy/terraform).
#
#   make build            # bin/ for linux/amd64, static (CGO_ENABLED=0)
#   packer init deploy/packer
#   packer build -var region=eu-west-1 -var ca_cert=shoal-ca.pem deploy/packer
#
# The image carries the cluster's CA certificate (/etc/shoal/ca.pem, which
# agents trust and coordinators serve with) and AWS's instance identity
# certificates (/etc/shoal/iid-trust/<region>.pem, the coordinators'
# --iid-trust); it never carries a private key.
#
# Use Packer >= 1.7 (HashiCorp's release): required_plugins does not exist in
# Debian's packer 1.6.6.

packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type        = string
  description = "Region to build the AMI in."
}

variable "ca_cert" {
  type        = string
  description = "The cluster CA certificate (shoal-ca.pem from `shoal-coordinator tls ca create`), installed as /etc/shoal/ca.pem. Never the key."
  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", file(var.ca_cert))) && !can(regex("PRIVATE KEY", file(var.ca_cert)))
    error_message = "The ca_cert must be a PEM certificate file with no private key in it."
  }
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Builder instance type."
}

variable "source_ami_name" {
  type        = string
  default     = "debian-12-amd64-*"
  description = "Base image name filter."
}

variable "source_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "Account owning the base image (Debian's)."
}

variable "vpc_id" {
  type        = string
  default     = ""
  description = "VPC to build in; empty uses the region's default VPC (accounts without one must set vpc_id and subnet_id)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the builder instance; it must let Packer reach the builder over SSH (a public subnet, with associate_public_ip_address)."
}

variable "associate_public_ip_address" {
  type        = bool
  default     = true
  description = "Give the builder a public address so Packer can SSH to it."
}

variable "ssm_agent_url" {
  type        = string
  default     = ""
  description = "amazon-ssm-agent .deb to install (Debian does not package it); empty: AWS's regional bucket, https://s3.<region>.amazonaws.com/amazon-ssm-<region>/latest/debian_amd64/amazon-ssm-agent.deb."
}

variable "ssm_agent_sha256" {
  type        = string
  default     = ""
  description = "SHA-256 of that .deb; when set, the build fails on any other file."
}

variable "ssh_username" {
  type        = string
  default     = "admin"
  description = "Login user of the base image."
}

locals {
  bin       = "${path.root}/../../bin"
  iid_trust = "${path.root}/../iid-trust"
  ssm_agent = var.ssm_agent_url != "" ? var.ssm_agent_url : "https://s3.${var.region}.amazonaws.com/amazon-ssm-${var.region}/latest/debian_amd64/amazon-ssm-agent.deb"
  stamp     = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "shoal" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = var.ssh_username
  ami_name      = "shoal-${local.stamp}"
  vpc_id        = var.vpc_id
  subnet_id     = var.subnet_id
  # Packer reaches the builder over SSH through its public address.
  associate_public_ip_address = var.associate_public_ip_address
  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.source_ami_owner]
    most_recent = true
  }
  # Instances launched from the image default to IMDSv2 only.
  imds_support = "v2.0"
  # The builder itself also refuses IMDSv1.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  tags = {
    Name          = "shoal"
    "shoal:built" = local.stamp
  }
}

build {
  sources = ["source.amazon-ebs.shoal"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/shoal/bin /tmp/shoal/systemd /tmp/shoal/config /tmp/shoal/libexec /tmp/shoal/trust /tmp/shoal/iid-trust"]
  }

  provisioner "file" {
    sources = [
      "${local.bin}/shoal-agent",
      "${local.bin}/shoal-demoapp",
      "${local.bin}/shoal-coordinator",
      "${local.bin}/shoal-lb",
    ]
    destination = "/tmp/shoal/bin/"
  }

  provisioner "file" {
    sources = [
      "${path.root}/../systemd/shoal-agent.service",
      "${path.root}/../systemd/shoal-demoapp.service",
      "${path.root}/../systemd/shoal-coordinator.service",
      "${path.root}/../systemd/shoal-lb.service",
      "${path.root}/../systemd/shoal-snapshot-upload.service",
      "${path.root}/../systemd/shoal-snapshot-upload.timer",
    ]
    destination = "/tmp/shoal/systemd/"
  }

  provisioner "file" {
    sources = [
      "${path.root}/../systemd/shoal-coordinator-secrets",
      "${path.root}/../systemd/shoal-lb-secrets",
      "${path.root}/../systemd/shoal-snapshot-upload",
    ]
    destination = "/tmp/shoal/libexec/"
  }

  provisioner "file" {
    source      = var.ca_cert
    destination = "/tmp/shoal/trust/ca.pem"
  }

  # One file per region, from deploy/iid-trust; the coordinator unit passes
  # /etc/shoal/iid-trust/$AWS_REGION.pem to --iid-trust.
  provisioner "file" {
    sources = [
      "${local.iid_trust}/us-east-1.pem",
      "${local.iid_trust}/us-east-1-rsa2048.pem",
    ]
    destination = "/tmp/shoal/iid-trust/"
  }

  provisioner "file" {
    sources = [
      "${path.root}/../config/shoal-agent.default",
      "${path.root}/../config/shoal-demoapp.default",
    ]
    destination = "/tmp/shoal/config/"
  }

  provisioner "shell" {
    execute_command = "sudo sh -eu '{{ .Path }}'"
    inline = [
      # Static binaries only (make build sets CGO_ENABLED=0): nothing ties
      # them to the build host's glibc. ldd fails on a static executable.
      "for b in /tmp/shoal/bin/*; do if ldd \"$b\" >/dev/null 2>&1; then echo \"$b is dynamically linked; build with make build (CGO_ENABLED=0)\" >&2; exit 1; fi; done",
      "install -m 0755 /tmp/shoal/bin/* /usr/local/bin/",
      "install -m 0644 /tmp/shoal/systemd/*.service /tmp/shoal/systemd/*.timer /etc/systemd/system/",
      "install -m 0644 /tmp/shoal/config/shoal-agent.default /etc/default/shoal-agent",
      "install -m 0644 /tmp/shoal/config/shoal-demoapp.default /etc/default/shoal-demoapp",
      "install -d -m 0755 /etc/shoal /etc/shoal/iid-trust /usr/local/libexec/shoal",
      "install -m 0644 /tmp/shoal/trust/ca.pem /etc/shoal/ca.pem",
      "install -m 0644 /tmp/shoal/iid-trust/*.pem /etc/shoal/iid-trust/",
      "install -m 0755 /tmp/shoal/libexec/shoal-coordinator-secrets /usr/local/libexec/shoal/shoal-coordinator-secrets",
      "install -m 0755 /tmp/shoal/libexec/shoal-lb-secrets /usr/local/libexec/shoal/shoal-lb-secrets",
      "install -m 0755 /tmp/shoal/libexec/shoal-snapshot-upload /usr/local/libexec/shoal/shoal-snapshot-upload",
      # Session Manager, the troubleshooting path: Debian does not package
      # the SSM agent, so it comes from AWS's own regional bucket over HTTPS
      # (checked against ssm_agent_sha256 when given).
      "command -v curl >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -qy curl; }",
      "curl -fsSL --proto =https -o /tmp/shoal/amazon-ssm-agent.deb '${local.ssm_agent}'",
      "if [ -n '${var.ssm_agent_sha256}' ]; then echo '${var.ssm_agent_sha256}  /tmp/shoal/amazon-ssm-agent.deb' | sha256sum -c -; fi",
      "DEBIAN_FRONTEND=noninteractive apt-get install -qy /tmp/shoal/amazon-ssm-agent.deb",
      "systemctl enable amazon-ssm-agent.service",
      # The secrets scripts read SSM through the AWS CLI.
      "command -v aws >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -qy awscli; }",
      "systemctl daemon-reload",
      "systemctl enable shoal-agent.service shoal-demoapp.service",
      "rm -rf /tmp/shoal",
    ]
  }
}

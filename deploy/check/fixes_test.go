package check

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The checks in this file hold deploy/ to what an operator with a fresh
// account needs (issue 20): each one fails on the mistake it names.

func tfModuleAt(t *testing.T, rel string) *tfModule {
	t.Helper()
	return loadModule(t, filepath.Join(deployDir, "terraform", rel))
}

// everyBlock visits every block of every module, with its module.
func everyBlock(t *testing.T, f func(m *tfModule, b *hclsyntax.Block)) {
	t.Helper()
	for _, dir := range terraformModules(t) {
		m := loadModule(t, dir)
		for _, file := range m.files {
			_ = hclsyntax.VisitAll(file.body, func(n hclsyntax.Node) hcl.Diagnostics {
				if b, ok := n.(*hclsyntax.Block); ok {
					f(m, b)
				}
				return nil
			})
		}
	}
}

func TestNoRegionWideMetadataDefaults(t *testing.T) {
	everyBlock(t, func(m *tfModule, b *hclsyntax.Block) {
		if b.Type == "resource" && b.Labels[0] == "aws_ec2_instance_metadata_defaults" {
			t.Errorf("%s: aws_ec2_instance_metadata_defaults changes every instance of the region and account, and destroy resets it; set metadata_options on Shoal's own launches", b.Range())
		}
	})
}

func TestNoDefaultSecurityGroupRules(t *testing.T) {
	everyBlock(t, func(m *tfModule, b *hclsyntax.Block) {
		if b.Type == "resource" && b.Labels[0] == "aws_default_security_group" {
			t.Errorf("%s: Shoal must not manage the VPC's default security group", b.Range())
		}
		for name, a := range b.Body.Attributes {
			for _, tr := range a.Expr.Variables() {
				for i := range tr {
					if stepName(tr, i) == "default_security_group_id" {
						t.Errorf("%s: %s uses the VPC's default security group; instances launched without a group would reach Shoal", a.Range(), name)
					}
				}
			}
		}
	})
}

// The internet-facing NLB must wait for the public subnets' route to the
// internet gateway, or its creation fails with InvalidSubnet on a first
// apply: the vpc module's public_subnet_ids output depends on the route.
func TestNLBWaitsForTheInternetGateway(t *testing.T) {
	vpc := tfModuleAt(t, "modules/vpc")
	var out *hclsyntax.Block
	for _, f := range vpc.files {
		for _, b := range f.body.Blocks {
			if b.Type == "output" && b.Labels[0] == "public_subnet_ids" {
				out = b
			}
		}
	}
	if out == nil {
		t.Fatal("modules/vpc has no output public_subnet_ids")
	}
	deps := map[string]bool{}
	if a, ok := out.Body.Attributes["depends_on"]; ok {
		for _, tr := range a.Expr.Variables() {
			deps[tr.RootName()+"."+stepName(tr, 1)] = true
		}
	}
	if !deps["aws_route_table_association.public"] {
		t.Errorf("output public_subnet_ids must depend_on aws_route_table_association.public (the subnets' route to the internet gateway); got %v", deps)
	}
	rt := resource(t, vpc, "aws_route_table", "public")
	if !strings.Contains(string(mustRead(t, filepath.Join(vpc.dir, "main.tf"))), "gateway_id = aws_internet_gateway.this.id") || rt == nil {
		t.Error("aws_route_table.public must route through aws_internet_gateway.this")
	}
	lb := tfModuleAt(t, "modules/lb")
	nlb := resource(t, lb, "aws_lb", "this")
	if !refersTo(nlb.Body, "subnets", "var", "public_subnet_ids") {
		t.Error("aws_lb.this must take its subnets from var.public_subnet_ids (the vpc module's output)")
	}
	root := tfModuleAt(t, ".")
	if call := root.modules["lb"]; call == nil || !refersTo(call.Body, "public_subnet_ids", "module", "vpc") {
		t.Error("module lb must get public_subnet_ids from module.vpc")
	}
}

func TestCoordinatorsSurviveReplacement(t *testing.T) {
	m := tfModuleAt(t, "modules/coordinators")
	t.Run("user data never bootstraps a cluster by itself", func(t *testing.T) {
		src := string(mustRead(t, filepath.Join(m.dir, "main.tf"))) + string(mustRead(t, filepath.Join(m.dir, "user-data.sh.tftpl")))
		if regexp.MustCompile(`--bootstrap\b[^-]`).MatchString(src) || strings.Contains(src, `"--bootstrap"`) {
			t.Error("modules/coordinators passes --bootstrap: a flag left in user data forms a second cluster when that node is replaced")
		}
		if !strings.Contains(src, "--bootstrap-expect ${var.node_count}") || !strings.Contains(src, "--join ") {
			t.Error("every coordinator must run with --bootstrap-expect ${var.node_count} and a --join list")
		}
	})
	t.Run("each node has its own data volume, kept and reattached", func(t *testing.T) {
		vol := resource(t, m, "aws_ebs_volume", "data")
		att := resource(t, m, "aws_volume_attachment", "data")
		inst := resource(t, m, "aws_instance", "coordinator")
		for _, b := range []*hclsyntax.Block{vol, att, inst} {
			if !refersTo(b.Body, "count", "var", "node_count") {
				t.Errorf("%s: count must be var.node_count (one volume per node)", b.Range())
			}
		}
		if !refersTo(att.Body, "volume_id", "aws_ebs_volume", "data") || !refersTo(att.Body, "instance_id", "aws_instance", "coordinator") {
			t.Error("aws_volume_attachment.data must attach aws_ebs_volume.data to aws_instance.coordinator")
		}
		for _, tr := range traversals(vol.Body) {
			if tr.RootName() == "aws_instance" {
				t.Errorf("%s: aws_ebs_volume.data must not depend on the instance, or replacing the instance replaces the volume and its raft state", tr.SourceRange())
			}
		}
		if ig := lifecycleIgnores(inst); !ig["ami"] || !ig["user_data"] {
			t.Errorf("aws_instance.coordinator ignores changes to %v; it must ignore ami and user_data, so a new AMI never replaces the three at once (roll-coordinators.sh replaces them one by one)", ig)
		}
		ud := string(mustRead(t, filepath.Join(m.dir, "user-data.sh.tftpl")))
		if !strings.Contains(ud, "/var/lib/private/shoal-coordinator") || !strings.Contains(ud, "${volume_id}") {
			t.Error("the user data must mount the node's volume where the unit's StateDirectory is (/var/lib/private/shoal-coordinator)")
		}
		if _, err := os.Stat(filepath.Join(deployDir, "terraform", "roll-coordinators.sh")); err != nil {
			t.Errorf("the rolling replacement script is missing: %v", err)
		}
		if b := resource(t, m, "aws_s3_bucket_public_access_block", "snapshots"); !refersTo(b.Body, "bucket", "aws_s3_bucket", "snapshots") {
			t.Error("the snapshots bucket must block public access")
		}
	})
}

// lifecycleIgnores is the attribute names b's lifecycle ignore_changes
// lists.
func lifecycleIgnores(b *hclsyntax.Block) map[string]bool {
	out := map[string]bool{}
	for _, nb := range b.Body.Blocks {
		if nb.Type != "lifecycle" {
			continue
		}
		if a, ok := nb.Body.Attributes["ignore_changes"]; ok {
			// ignore_changes = [ami, user_data]: bare names, which HCL
			// parses as root traversals.
			for _, tr := range a.Expr.Variables() {
				out[tr.RootName()] = true
			}
		}
	}
	return out
}

// The TERMINATING hook's heartbeat is drain_timeout_seconds everywhere:
// the group Terraform makes, the hook fleet bootstrap puts, and the one the
// scaler puts on a group that has none.
func TestHookHeartbeatWiredToTheVariable(t *testing.T) {
	root := tfModuleAt(t, ".")
	v := root.variables["drain_timeout_seconds"]
	if v == nil {
		t.Fatal("no root variable drain_timeout_seconds")
	}
	if len(v.Body.Blocks) == 0 || v.Body.Blocks[0].Type != "validation" {
		t.Error("drain_timeout_seconds must be validated to AWS's 30-7200 s")
	}
	if !refersTo(root.modules["fleet"].Body, "drain_timeout_seconds", "var", "drain_timeout_seconds") {
		t.Error("module fleet must get var.drain_timeout_seconds")
	}
	if !refersTo(root.modules["coordinators"].Body, "hook_heartbeat", "var", "drain_timeout_seconds") {
		t.Error("module coordinators must get hook_heartbeat = var.drain_timeout_seconds (serve --hook-heartbeat)")
	}
	fleet := tfModuleAt(t, "modules/fleet")
	asg := resource(t, fleet, "aws_autoscaling_group", "fleet")
	var ok bool
	for _, b := range asg.Body.Blocks {
		if b.Type == "initial_lifecycle_hook" && refersTo(b.Body, "heartbeat_timeout", "var", "drain_timeout_seconds") {
			ok = true
		}
	}
	if !ok {
		t.Error("the group's initial_lifecycle_hook must have heartbeat_timeout = var.drain_timeout_seconds")
	}
	if d := fleet.variables["drain_timeout_seconds"]; d == nil || d.Body.Attributes["default"] != nil {
		t.Error("modules/fleet's drain_timeout_seconds must have no default of its own: the root's value is the one")
	}
	outs := string(mustRead(t, filepath.Join(root.dir, "outputs.tf")))
	if !strings.Contains(outs, "--hook-heartbeat ${var.drain_timeout_seconds}s") {
		t.Error("bootstrap_command must pass --hook-heartbeat ${var.drain_timeout_seconds}s")
	}
	ud := string(mustRead(t, filepath.Join(root.dir, "modules", "coordinators", "main.tf")))
	if !strings.Contains(ud, "--hook-heartbeat ${var.hook_heartbeat}s") {
		t.Error("the coordinators must run with --hook-heartbeat ${var.hook_heartbeat}s")
	}
}

func TestGroupPrefixFromName(t *testing.T) {
	root := tfModuleAt(t, ".")
	src := string(mustRead(t, filepath.Join(root.dir, "main.tf")))
	if !regexp.MustCompile(`group_prefix\s*=\s*"\$\{var\.name\}-"`).MatchString(src) {
		t.Error(`local.group_prefix must be "${var.name}-": the name variable promises groups start with it`)
	}
	outs := string(mustRead(t, filepath.Join(root.dir, "outputs.tf")))
	if !strings.Contains(outs, "--asg ${local.group_name}") {
		t.Error("bootstrap_command must pass --asg ${local.group_name}; fleet bootstrap's own default is shoal-<fleet>")
	}
}

func TestOperatorAccess(t *testing.T) {
	lb := tfModuleAt(t, "modules/lb")
	lis := resource(t, lb, "aws_lb_listener", "control")
	if !refersTo(lis.Body, "port", "var", "control_port") {
		t.Error("the control listener must listen on var.control_port")
	}
	var toOperators bool
	for _, f := range lb.files {
		for _, b := range f.body.Blocks {
			if b.Type == "resource" && b.Labels[0] == "aws_vpc_security_group_ingress_rule" && refersTo(b.Body, "from_port", "var", "control_port") {
				toOperators = refersTo(b.Body, "cidr_ipv4", "each", "value") && strings.Contains(string(mustRead(t, filepath.Join(lb.dir, "main.tf"))), "for_each          = toset(var.operator_cidrs)")
			}
			if b.Type == "resource" && strings.Contains(b.Labels[0], "listener") && refersTo(b.Body, "port", "var", "agent_port") {
				t.Errorf("%s: the agent port must stay private", b.Range())
			}
		}
	}
	if !toOperators {
		t.Error("the NLB's control port must admit var.operator_cidrs only")
	}
	tg := resource(t, lb, "aws_lb_target_group", "control")
	// Unset, an instance target group preserves client addresses.
	if a := tg.Body.Attributes["preserve_client_ip"]; a == nil {
		t.Error("the control target group must set preserve_client_ip = false: the coordinators admit the NLB's group, not operators' CIDRs")
	} else if v, diags := a.Expr.Value(nil); diags.HasErrors() || !v.Type().Equals(cty.Bool) || !v.IsKnown() || v.True() {
		t.Errorf("%s: preserve_client_ip must be the literal false: the coordinators admit the NLB's group, not operators' CIDRs", a.Range())
	}
	ex := string(mustRead(t, filepath.Join(deployDir, "terraform", "terraform.tfvars.example")))
	if strings.Contains(ex, "203.0.113.0/24") {
		t.Error("terraform.tfvars.example: operator_cidrs must be a realistic egress address, not a documentation range")
	}
	pk := string(mustRead(t, filepath.Join(deployDir, "packer", "shoal.pkr.hcl")))
	for _, want := range []string{"amazon-ssm-agent", "systemctl enable amazon-ssm-agent.service", `variable "vpc_id"`, `variable "subnet_id"`, "vpc_id        = var.vpc_id", "subnet_id     = var.subnet_id"} {
		if !strings.Contains(pk, want) {
			t.Errorf("the Packer template lacks %q", want)
		}
	}
}

func TestUnitFixes(t *testing.T) {
	units := map[string]Unit{}
	for _, u := range loadUnits(t) {
		units[u.Name] = u
	}
	agent := units["shoal-agent.service"]
	if v, _ := agent.Value("Unit", "StartLimitIntervalSec"); v != "0" {
		t.Errorf("shoal-agent.service: StartLimitIntervalSec=%q, want 0: an agent waiting for its tags must never hit the start limit and stay failed", v)
	}
	if v, _ := agent.Value("Service", "RestartSec"); v == "1s" || v == "" {
		t.Errorf("shoal-agent.service: RestartSec=%q; retry slower than 1 s", v)
	}
	demo := units["shoal-demoapp.service"]
	ex := demo.Values("Service", "ExecStart")
	if len(ex) != 1 || !strings.Contains(ex[0], "--listen 0.0.0.0:${SHOAL_APP_PORT}") {
		t.Errorf("shoal-demoapp.service must listen on ${SHOAL_APP_PORT} (Terraform's app_port), got %q", ex)
	}
	fleet := string(mustRead(t, filepath.Join(deployDir, "terraform", "modules", "fleet", "app-port.sh.tftpl")))
	if !strings.Contains(fleet, "SHOAL_APP_PORT=${app_port}") || !strings.Contains(fleet, "127.0.0.1:${app_port}/metrics") {
		t.Error("the fleet's user data must write SHOAL_APP_PORT and the agent's scrape URL from app_port")
	}
	mk := string(mustRead(t, filepath.Join(deployDir, "..", "Makefile")))
	if !strings.Contains(mk, "CGO_ENABLED=0 $(GO) build -o $(BIN)/") {
		t.Error("make build must build static binaries (CGO_ENABLED=0)")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

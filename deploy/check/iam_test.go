package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// role is one IAM role deploy/ makes, with the code whose calls it grants.
type role struct {
	name     string
	template string // under deploy/
	// listFunc, in package coordinator/internal/cli, returns every AWS
	// operation the role's holder can call; "" when only its scripts call
	// AWS.
	listFunc string
	// scripts (under deploy/) make AWS CLI calls with the role too.
	scripts []string
	// secretsSub is the part of secrets_path the role may read, "" for
	// all of it.
	secretsSub string
	// vars are the values modules/iam passes the template, sampled.
	vars map[string]string
	// iamRoles are the aws_iam_role resources that carry this policy;
	// default: the one named name.
	iamRoles []string
	// fixedOps, when set, is the exact list the policy must grant: the
	// permissions of a program that is not Shoal's (the SSM agent).
	fixedOps []string
}

// on is the aws_iam_role names r's policy is attached to.
func (r role) on() []string {
	if len(r.iamRoles) > 0 {
		return r.iamRoles
	}
	return []string{r.name}
}

var roles = []role{
	{
		name:     "coordinator",
		template: "iam/coordinator-policy.json.tftpl",
		listFunc: "ServeAWSOperations",
		scripts:  []string{secretsScript, "systemd/shoal-snapshot-upload"},
		vars: map[string]string{
			"partition":       "aws",
			"region":          "eu-west-1",
			"account_id":      "123456789012",
			"group_prefix":    "shoal-",
			"alarm_prefix":    "shoal-",
			"secrets_path":    "/shoal/shoal",
			"secrets_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-4000-8000-000000000000",
			"snapshot_bucket": "shoal-snapshots-123456789012",
			"cluster_name":    "shoal",
		},
	},
	{
		// Session Manager shells for troubleshooting: the SSM agent's
		// documented minimum for sessions, on coordinators and LBs only
		// (never the fleet's agent role).
		name:     "ssm-session",
		template: "iam/ssm-session-policy.json.tftpl",
		iamRoles: []string{"coordinator", "lb"},
		fixedOps: []string{"ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
			"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"},
		vars: map[string]string{},
	},
	{
		// shoal-lb makes no AWS call of its own; its boot script reads
		// its certificate and key.
		name:       "lb",
		template:   "iam/lb-policy.json.tftpl",
		scripts:    []string{lbSecretsScript},
		secretsSub: "/lb",
		vars: map[string]string{
			"partition":       "aws",
			"region":          "eu-west-1",
			"account_id":      "123456789012",
			"secrets_path":    "/shoal/shoal",
			"secrets_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-4000-8000-000000000000",
		},
	},
	{
		name:     "operator",
		template: "iam/operator-policy.json.tftpl",
		listFunc: "BootstrapAWSOperations",
		// Teardown of what bootstrap made runs as the operator too.
		scripts: []string{"terraform/teardown.sh"},
		vars: map[string]string{
			"alarm_prefix":   "shoal-",
			"partition":      "aws",
			"region":         "eu-west-1",
			"account_id":     "123456789012",
			"group_prefix":   "shoal-",
			"agent_role_arn": "arn:aws:iam::123456789012:role/shoal-agent",
		},
	},
}

// implied are permissions AWS checks inside other operations; they are not
// API calls Shoal makes, and each may be granted only while an operation that
// needs it (directly or through another implied one) is in the list.
var implied = map[string][]string{
	// Tags given at creation (TagSpecifications) are authorised as CreateTags.
	"ec2:CreateTags": {"ec2:RunInstances", "ec2:CreateImage", "ec2:CreateLaunchTemplate"},
	// A launch template with the agent's instance profile passes its role.
	"iam:PassRole": {"autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances"},
	// A group made or changed with a launch template checks that its
	// creator may launch from it.
	"ec2:RunInstances": {"autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"},
}

// groupScoped are actions that accept an Auto Scaling group ARN as resource;
// granting them on "*" would let a role touch any group.
var groupScoped = map[string]bool{
	"autoscaling:SetDesiredCapacity":                  true,
	"autoscaling:TerminateInstanceInAutoScalingGroup": true,
	"autoscaling:SetInstanceProtection":               true,
	"autoscaling:PutLifecycleHook":                    true,
	"autoscaling:CompleteLifecycleAction":             true,
	"autoscaling:RecordLifecycleActionHeartbeat":      true,
	"autoscaling:CreateAutoScalingGroup":              true,
	"autoscaling:UpdateAutoScalingGroup":              true,
	"autoscaling:DeleteAutoScalingGroup":              true,
}

type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type statement struct {
	Sid         string
	Effect      string
	Action      stringList
	NotAction   stringList
	Resource    stringList
	NotResource stringList
	Condition   map[string]map[string]stringList
}

type policy struct {
	Version   string
	Statement []statement
}

func renderPolicy(t *testing.T, r role) policy {
	t.Helper()
	policyTemplate := r.template
	src, err := os.ReadFile(filepath.Join(deployDir, policyTemplate))
	if err != nil {
		t.Fatal(err)
	}
	rendered := regexp.MustCompile(`\$\{([a-z_]+)\}`).ReplaceAllStringFunc(string(src), func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := r.vars[name]
		if !ok {
			t.Errorf("%s uses ${%s}, which the check (and modules/iam) do not pass", policyTemplate, name)
		}
		return v
	})
	if strings.Contains(rendered, "${") || strings.Contains(rendered, "%{") {
		t.Fatalf("%s has a template directive the check cannot render", policyTemplate)
	}
	var p policy
	dec := json.NewDecoder(strings.NewReader(rendered))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s is not a valid IAM policy document: %v", policyTemplate, err)
	}
	return p
}

// alarmScoped are actions that accept an alarm ARN; the coordinator may
// change only its own cluster's alarms.
var alarmScoped = map[string]bool{
	"cloudwatch:PutMetricAlarm": true,
	"cloudwatch:DeleteAlarms":   true,
}

// cliDir holds the per-role lists of AWS operations.
const cliDir = "coordinator/internal/cli"

// TestRolePolicies checks each role's policy against its code: it grants
// every operation the role's holder calls, nothing else (but what AWS checks
// inside those), never with a wildcard, and each scoped as far as AWS allows.
func TestRolePolicies(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) { checkPolicy(t, r) })
	}
}

func checkPolicy(t *testing.T, r role) {
	policyTemplate, templateVars := r.template, r.vars
	var ops []string
	if r.listFunc != "" {
		var err error
		ops, err = CloudOperations(filepath.Join(deployDir, "..", filepath.FromSlash(cliDir)), r.listFunc)
		if err != nil {
			t.Fatalf("reading the %s role's operation list: %v", r.name, err)
		}
	}
	ops = append(ops, r.fixedOps...)
	for _, sc := range r.scripts {
		list, err := ScriptOperations(filepath.Join(deployDir, sc))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, list...)
	}
	p := renderPolicy(t, r)
	if p.Version != "2012-10-17" {
		t.Errorf("Version = %q, want 2012-10-17", p.Version)
	}
	granted := map[string][]statement{}
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("statement %s: Effect %q; the policy only allows", s.Sid, s.Effect)
		}
		if len(s.NotAction) > 0 || len(s.NotResource) > 0 {
			t.Errorf("statement %s: NotAction/NotResource grant everything else; list actions and resources", s.Sid)
		}
		if len(s.Resource) == 0 {
			t.Errorf("statement %s has no Resource", s.Sid)
		}
		for _, a := range s.Action {
			if strings.ContainsAny(a, "*?") {
				t.Errorf("statement %s grants wildcard action %q", s.Sid, a)
			}
			granted[a] = append(granted[a], s)
		}
	}
	opSet := map[string]bool{}
	for _, op := range ops {
		opSet[op] = true
		if granted[op] == nil {
			t.Errorf("the %s role's code calls %s but the policy does not grant it (add it to deploy/%s)", r.name, op, policyTemplate)
		}
	}
	// What AWS checks inside the granted calls, transitively.
	needed := map[string]bool{}
	for op := range opSet {
		needed[op] = true
	}
	for changed := true; changed; {
		changed = false
		for a, needers := range implied {
			if needed[a] || granted[a] == nil {
				continue
			}
			for _, n := range needers {
				if needed[n] {
					needed[a], changed = true, true
					break
				}
			}
		}
	}
	var names []string
	for a := range granted {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		if opSet[a] {
			continue
		}
		needers, ok := implied[a]
		if !ok {
			t.Errorf("the %s policy grants %s, which the role's code never calls", r.name, a)
			continue
		}
		if !needed[a] {
			t.Errorf("the %s policy grants %s, needed only by %v, none of which the role's code calls", r.name, a, needers)
		}
	}

	t.Run("group-scoped actions name the fleet's groups", func(t *testing.T) {
		want := fmt.Sprintf("autoScalingGroupName/%s*", templateVars["group_prefix"])
		for a, stmts := range granted {
			if !groupScoped[a] {
				continue
			}
			for _, s := range stmts {
				for _, r := range s.Resource {
					if !strings.HasPrefix(r, "arn:") || !strings.HasSuffix(r, want) {
						t.Errorf("%s is granted on %q; want only group ARNs ending in %s", a, r, want)
					}
				}
			}
		}
	})
	t.Run("alarm changes name this cluster's alarms", func(t *testing.T) {
		want := fmt.Sprintf(":alarm:%s*", templateVars["alarm_prefix"])
		for a, stmts := range granted {
			if !alarmScoped[a] {
				continue
			}
			for _, s := range stmts {
				for _, r := range s.Resource {
					if !strings.HasPrefix(r, "arn:") || !strings.HasSuffix(r, want) {
						t.Errorf("%s is granted on %q; want only alarm ARNs ending in %s", a, r, want)
					}
				}
			}
		}
	})
	t.Run("PutMetricData is limited to the Shoal namespace", func(t *testing.T) {
		for _, s := range granted["cloudwatch:PutMetricData"] {
			ns := s.Condition["StringEquals"]["cloudwatch:namespace"]
			if len(ns) != 1 || ns[0] != "Shoal" {
				t.Errorf("statement %s grants cloudwatch:PutMetricData without the condition StringEquals cloudwatch:namespace = Shoal (got %v)", s.Sid, s.Condition)
			}
		}
	})
	t.Run("PassRole only passes the agent role to EC2", func(t *testing.T) {
		for _, s := range granted["iam:PassRole"] {
			if len(s.Resource) != 1 || s.Resource[0] != templateVars["agent_role_arn"] {
				t.Errorf("iam:PassRole on %v, want only the agent role", s.Resource)
			}
			if svc := s.Condition["StringEquals"]["iam:PassedToService"]; len(svc) != 1 || svc[0] != "ec2.amazonaws.com" {
				t.Errorf("iam:PassRole without iam:PassedToService = ec2.amazonaws.com")
			}
		}
	})
	t.Run("CreateTags only while creating", func(t *testing.T) {
		for _, s := range granted["ec2:CreateTags"] {
			if len(s.Condition["StringEquals"]["ec2:CreateAction"]) == 0 {
				t.Errorf("ec2:CreateTags without an ec2:CreateAction condition would let the coordinator retag anything")
			}
		}
	})
	t.Run("TerminateInstances only in the fleet's groups", func(t *testing.T) {
		for _, s := range granted["ec2:TerminateInstances"] {
			if g := s.Condition["StringLike"]["ec2:ResourceTag/aws:autoscaling:groupName"]; len(g) != 1 || g[0] != templateVars["group_prefix"]+"*" {
				t.Errorf("ec2:TerminateInstances not conditioned on the instance's group tag (got %v)", s.Condition)
			}
		}
	})
	paramARN := fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s%s/*", templateVars["partition"], templateVars["region"], templateVars["account_id"], templateVars["secrets_path"], r.secretsSub)
	t.Run("GetParameter reads only this cluster's secrets", func(t *testing.T) {
		for _, s := range granted["ssm:GetParameter"] {
			if len(s.Resource) != 1 || s.Resource[0] != paramARN {
				t.Errorf("ssm:GetParameter on %v, want only %s", s.Resource, paramARN)
			}
		}
	})
	t.Run("Decrypt only the secrets key, only through SSM, only for those parameters", func(t *testing.T) {
		for _, s := range granted["kms:Decrypt"] {
			if len(s.Resource) != 1 || s.Resource[0] != templateVars["secrets_key_arn"] {
				t.Errorf("kms:Decrypt on %v, want only the secrets key", s.Resource)
			}
			if v := s.Condition["StringEquals"]["kms:ViaService"]; len(v) != 1 || v[0] != "ssm."+templateVars["region"]+".amazonaws.com" {
				t.Errorf("kms:Decrypt without kms:ViaService = ssm.<region>.amazonaws.com (got %v)", s.Condition)
			}
			if v := s.Condition["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"]; len(v) != 1 || v[0] != paramARN {
				t.Errorf("kms:Decrypt not limited to parameters %s by kms:EncryptionContext:PARAMETER_ARN (got %v)", paramARN, s.Condition)
			}
		}
	})
}

// TestPolicyTemplateWiring checks that modules/iam gives each role exactly
// one policy, its template rendered with templatefile() and exactly the
// variables the template uses, and that the agent role gets no policy at all.
func TestPolicyTemplateWiring(t *testing.T) {
	m := loadModule(t, filepath.Join(deployDir, "terraform", "modules", "iam"))
	policies := map[string]int{}
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" {
				continue
			}
			switch b.Labels[0] {
			case "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_iam_policy_attachment":
				attr := b.Body.Attributes["role"]
				if attr == nil {
					t.Errorf("%s: a policy attached by other means than role = aws_iam_role.<name> is not checked", b.Range())
					continue
				}
				var target string
				for _, tr := range attr.Expr.Variables() {
					if stepName(tr, 0) == "aws_iam_role" {
						target = stepName(tr, 1)
					}
				}
				if target == "agent" {
					t.Errorf("%s: the agent role must carry no policy", b.Range())
					continue
				}
				if b.Labels[0] != "aws_iam_role_policy" {
					t.Errorf("%s: the %s role's policies must be inline templates", b.Range(), target)
					continue
				}
				// Which known policy this is: the template it renders.
				var r *role
				if call, ok := b.Body.Attributes["policy"].Expr.(*hclsyntax.FunctionCallExpr); ok && call.Name == "templatefile" && len(call.Args) == 2 {
					p := pathArg(t, call, m.dir)
					for i := range roles {
						if strings.HasSuffix(p, roles[i].template) {
							r = &roles[i]
						}
					}
				}
				if r == nil {
					t.Errorf("%s: a policy for role %q that is not one of deploy/iam's checked templates", b.Range(), target)
					continue
				}
				if !slices.Contains(r.on(), target) {
					t.Errorf("%s: %s is attached to aws_iam_role.%s; it belongs on %v only", b.Range(), r.template, target, r.on())
					continue
				}
				policies[target+" "+r.template]++
				checkTemplateCall(t, m, b, *r)
			}
			if b.Labels[0] == "aws_iam_role" && b.Labels[1] == "agent" {
				for _, nb := range b.Body.Blocks {
					if nb.Type == "inline_policy" {
						t.Errorf("%s: the agent role must carry no inline policy", nb.Range())
					}
				}
				if _, ok := b.Body.Attributes["managed_policy_arns"]; ok {
					t.Errorf("%s: the agent role must carry no managed policy", b.Range())
				}
			}
		}
	}
	for _, r := range roles {
		for _, on := range r.on() {
			if n := policies[on+" "+r.template]; n != 1 {
				t.Errorf("modules/iam gives aws_iam_role.%s %s %d times, want exactly once", on, r.template, n)
			}
		}
	}
}

// checkTemplateCall checks that policy block b is templatefile(r.template,
// {exactly r's variables}).
func checkTemplateCall(t *testing.T, m *tfModule, b *hclsyntax.Block, r role) {
	t.Helper()
	attr := b.Body.Attributes["policy"]
	call, ok := attr.Expr.(*hclsyntax.FunctionCallExpr)
	if attr == nil || !ok || call.Name != "templatefile" || len(call.Args) != 2 {
		t.Errorf("%s: the %s policy must be templatefile(path, vars)", b.Range(), r.name)
		return
	}
	if !strings.HasSuffix(pathArg(t, call, m.dir), r.template) {
		t.Errorf("%s: the %s role's policy must be deploy/%s", call.Range(), r.name, r.template)
		return
	}
	obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Errorf("%s: templatefile vars must be an object literal", call.Range())
		return
	}
	passed := map[string]bool{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: non-literal key", item.KeyExpr.Range())
		}
		passed[k.AsString()] = true
	}
	for k := range r.vars {
		if !passed[k] {
			t.Errorf("modules/iam does not pass %q to %s", k, r.template)
		}
	}
	for k := range passed {
		if _, ok := r.vars[k]; !ok {
			t.Errorf("modules/iam passes %q to %s, which the check does not know; add it to the role's vars", k, r.template)
		}
	}
}

package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const policyTemplate = "iam/coordinator-policy.json.tftpl"

// templateVars are the values deploy/terraform/modules/iam passes to the
// policy template, with sample values for the check.
var templateVars = map[string]string{
	"partition":      "aws",
	"region":         "eu-west-1",
	"account_id":     "123456789012",
	"group_prefix":   "shoal-",
	"alarm_prefix":   "shoal-",
	"agent_role_arn": "arn:aws:iam::123456789012:role/shoal-agent",
}

// implied are permissions AWS checks inside other operations; they are not
// API calls Shoal makes, and each may be granted only while an operation that
// needs it is in the list.
var implied = map[string][]string{
	// Tags given at creation (TagSpecifications) are authorised as CreateTags.
	"ec2:CreateTags": {"ec2:RunInstances", "ec2:CreateImage", "ec2:CreateLaunchTemplate"},
	// A launch template with the agent's instance profile passes its role.
	"iam:PassRole": {"autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances"},
}

// groupScoped are actions that accept an Auto Scaling group ARN as resource;
// granting them on "*" would let the coordinator touch any group.
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

func renderPolicy(t *testing.T) policy {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, policyTemplate))
	if err != nil {
		t.Fatal(err)
	}
	rendered := regexp.MustCompile(`\$\{([a-z_]+)\}`).ReplaceAllStringFunc(string(src), func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := templateVars[name]
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

// operationLists are the Go packages that call AWS, each with a function
// returning every operation it can call (and a test there proving it).
var operationLists = []string{
	"coordinator/internal/cloud/aws",
	"coordinator/internal/publish",
}

// alarmScoped are actions that accept an alarm ARN; the coordinator may
// change only its own cluster's alarms.
var alarmScoped = map[string]bool{
	"cloudwatch:PutMetricAlarm": true,
	"cloudwatch:DeleteAlarms":   true,
}

func TestCoordinatorPolicy(t *testing.T) {
	var ops []string
	for _, pkg := range operationLists {
		list, err := CloudOperations(filepath.Join(deployDir, "..", filepath.FromSlash(pkg)), "Operations")
		if err != nil {
			t.Fatalf("reading %s's operation list: %v", pkg, err)
		}
		ops = append(ops, list...)
	}
	p := renderPolicy(t)
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
			t.Errorf("Shoal calls %s but the coordinator policy does not grant it (add it to deploy/%s)", op, policyTemplate)
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
			t.Errorf("the policy grants %s, which Shoal never calls", a)
			continue
		}
		var needed bool
		for _, n := range needers {
			needed = needed || opSet[n]
		}
		if !needed {
			t.Errorf("the policy grants %s, needed only by %v, none of which Shoal calls", a, needers)
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
}

// TestPolicyTemplateWiring checks that modules/iam renders the policy with
// templatefile() and passes exactly the variables the template uses, and that
// the agent role gets no policy at all.
func TestPolicyTemplateWiring(t *testing.T) {
	m := loadModule(t, filepath.Join(deployDir, "terraform", "modules", "iam"))
	var calls int
	for _, f := range m.files {
		for _, call := range fileCalls(f.body) {
			if !strings.HasSuffix(pathArg(t, call, m.dir), policyTemplate) {
				continue
			}
			calls++
			if call.Name != "templatefile" || len(call.Args) != 2 {
				t.Fatalf("%s: the policy must be rendered with templatefile(path, vars)", call.Range())
			}
			obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Fatalf("%s: templatefile vars must be an object literal", call.Range())
			}
			passed := map[string]bool{}
			for _, item := range obj.Items {
				k, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("%s: non-literal key", item.KeyExpr.Range())
				}
				passed[k.AsString()] = true
			}
			for k := range templateVars {
				if !passed[k] {
					t.Errorf("modules/iam does not pass %q to the policy template", k)
				}
			}
			for k := range passed {
				if _, ok := templateVars[k]; !ok {
					t.Errorf("modules/iam passes %q, which the check does not know; add it to templateVars", k)
				}
			}
		}
	}
	if calls != 1 {
		t.Fatalf("modules/iam reads %s %d times, want once", policyTemplate, calls)
	}
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" {
				continue
			}
			switch b.Labels[0] {
			case "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_iam_policy_attachment":
				role := b.Body.Attributes["role"]
				if role == nil {
					continue
				}
				for _, tr := range role.Expr.Variables() {
					if stepName(tr, 0) == "aws_iam_role" && stepName(tr, 1) == "agent" {
						t.Errorf("%s: the agent role must carry no policy", b.Range())
					}
				}
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
}

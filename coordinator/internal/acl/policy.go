package acl

import (
	"fmt"
	"strings"
)

// Policy is what a token may do. Each policy includes the ones below it:
// admin covers operate, which covers read.
type Policy string

// The policies, weakest first.
const (
	PolicyRead    Policy = "read"
	PolicyOperate Policy = "operate"
	PolicyAdmin   Policy = "admin"
)

// Policies lists every policy, weakest first.
var Policies = []Policy{PolicyRead, PolicyOperate, PolicyAdmin}

func (p Policy) rank() int {
	switch p {
	case PolicyRead:
		return 1
	case PolicyOperate:
		return 2
	case PolicyAdmin:
		return 3
	default:
		return 0
	}
}

// Valid reports whether p is one of Policies.
func (p Policy) Valid() bool { return p.rank() > 0 }

// Covers reports whether a token of policy p may call an RPC that needs
// level need. An unknown policy covers nothing, and nothing covers an
// unknown level.
func (p Policy) Covers(need Policy) bool {
	return p.Valid() && need.Valid() && p.rank() >= need.rank()
}

// ParsePolicy returns the policy named s.
func ParsePolicy(s string) (Policy, error) {
	if p := Policy(s); p.Valid() {
		return p, nil
	}
	return "", fmt.Errorf("policy (%q): must be one of %s", s, policyList())
}

func policyList() string {
	s := make([]string, len(Policies))
	for i, p := range Policies {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// The gRPC services whose RPCs need a token.
const (
	ControlService = "shoal.v1.ControlService"
	ACLService     = "shoal.v1.ACLService"
)

// levels is the policy each token-guarded RPC needs, by full method name.
var levels = map[string]Policy{}

func init() {
	for p, methods := range map[Policy][]string{
		PolicyRead: {"GetStatus", "ListPeers", "GetFleet", "ListFleets", "ListInstances", "GetPolicy",
			"ListDecisions", "ExplainFleet", "ListAlarms", "ListLoadBalancers"},
		PolicyOperate: {"ScaleFleet", "PauseFleet", "ResumeFleet", "SetPolicy", "UpdateFleet"},
		PolicyAdmin: {"CreateFleet", "DeleteFleet", "SaveSnapshot", "RestoreSnapshot", "RemovePeer",
			"ResetInstanceIdentity"},
	} {
		for _, m := range methods {
			levels[FullMethod(ControlService, m)] = p
		}
	}
	for _, m := range []string{"BootstrapACL", "CreateToken", "ListTokens", "DeleteToken"} {
		levels[FullMethod(ACLService, m)] = PolicyAdmin
	}
}

// FullMethod is gRPC's full method name: "/<service>/<method>".
func FullMethod(service, method string) string { return "/" + service + "/" + method }

// Level returns the policy that fullMethod (e.g.
// "/shoal.v1.ControlService/ScaleFleet") needs. ok is false for a method
// not in the table, which no token may call.
func Level(fullMethod string) (p Policy, ok bool) {
	p, ok = levels[fullMethod]
	return p, ok
}

// Methods returns every token-guarded full method name with its level.
func Methods() map[string]Policy {
	out := make(map[string]Policy, len(levels))
	for k, v := range levels {
		out[k] = v
	}
	return out
}

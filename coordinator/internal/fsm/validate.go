package fsm

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Bounds on what a command may store. Anything that reaches the raft log is
// checked here, not only at the API, because the log has more than one door.
const (
	// MaxInstanceIDLen is an EC2 id: "i-" and 17 hex digits (older ones have 8).
	MaxInstanceIDLen = 19
	// MaxAddrLen bounds a member's host:port (a DNS name is at most 253).
	MaxAddrLen = 261
	// MaxMemberIDLen bounds a raft server id.
	MaxMemberIDLen = 128
	// MaxLabelLen bounds the short free-text fields of an instance
	// (availability_zone, image_id) and a watermark key.
	MaxLabelLen = 128
	// MaxTextLen bounds a decision's reason and error.
	MaxTextLen = 4096
	// MaxDecisionInputs bounds the metric values a decision records.
	MaxDecisionInputs = 64
)

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{1,17}$`)

// ValidInstanceID reports why id is not an EC2 instance id ("i-" and lower
// case hex, at most MaxInstanceIDLen characters), or nil. ingest checks an
// agent's hello with it too, so what the FSM would refuse never streams.
func ValidInstanceID(id string) *Error {
	switch {
	case id == "":
		return invalidf("id: required")
	case len(id) > MaxInstanceIDLen:
		return invalidf("id: %d characters, longer than %d", len(id), MaxInstanceIDLen)
	case !instanceIDRE.MatchString(id):
		return invalidf("id (%q): must be \"i-\" followed by lower-case hex digits", id)
	}
	return nil
}

// ValidPrivateIP reports why ip is not an IP address, or nil; "" is allowed
// (the scaler registers an instance before its agent told the address).
func ValidPrivateIP(ip string) *Error {
	if ip == "" {
		return nil
	}
	if len(ip) > 45 { // the longest textual IPv6 address
		return invalidf("private_ip: %d characters, longer than an IP address", len(ip))
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return invalidf("private_ip (%q): not an IP address", ip)
	}
	return nil
}

// validateInstance checks an instance's own fields; the fleet reference is
// checked against the state by the caller.
func validateInstance(in *shoalv1.Instance) *Error {
	if err := ValidInstanceID(in.Id); err != nil {
		return err
	}
	if err := ValidPrivateIP(in.PrivateIp); err != nil {
		return err
	}
	switch {
	case len(in.AvailabilityZone) > MaxLabelLen:
		return invalidf("availability_zone: longer than %d characters", MaxLabelLen)
	case len(in.ImageId) > MaxLabelLen:
		return invalidf("image_id: longer than %d characters", MaxLabelLen)
	case len(in.StateReason) > MaxTextLen:
		return invalidf("state_reason: longer than %d characters", MaxTextLen)
	case in.InterruptionAction != "" && !interruptionActions[in.InterruptionAction]:
		return invalidf("interruption_action (%q): must be terminate, stop or hibernate", in.InterruptionAction)
	}
	if _, ok := shoalv1.InstanceState_name[int32(in.State)]; !ok || in.State == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		return invalidf("state (%d): unknown instance state", in.State)
	}
	return nil
}

// validateAddr checks a member address: host:port that splits, a port in
// 1..65535 and a bounded length.
func validateAddr(field, addr string) *Error {
	switch {
	case addr == "":
		return invalidf("%s: required", field)
	case len(addr) > MaxAddrLen:
		return invalidf("%s: %d characters, longer than %d", field, len(addr), MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalidf("%s (%q): not host:port: %v", field, addr, err)
	}
	if host == "" {
		return invalidf("%s (%q): host is empty", field, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return invalidf("%s (%q): port must be a number in 1..65535", field, addr)
	}
	return nil
}

// ValidateMember checks a member's id and addresses.
func ValidateMember(m Member) *Error {
	switch {
	case m.ID == "":
		return invalidf("id: required")
	case len(m.ID) > MaxMemberIDLen:
		return invalidf("id: %d characters, longer than %d", len(m.ID), MaxMemberIDLen)
	}
	if err := validateAddr("raft_addr", m.RaftAddr); err != nil {
		return err
	}
	if err := validateAddr("rpc_addr", m.RPCAddr); err != nil {
		return err
	}
	if m.AgentAddr != "" {
		return validateAddr("agent_addr", m.AgentAddr)
	}
	return nil
}

// validatePolicy is decide.Validate, the check the API makes, so a policy
// that reaches the log some other way meets the same rules.
func validatePolicy(p *shoalv1.ScalingPolicy, min, max int32) *Error {
	if err := decide.Validate(p, min, max); err != nil {
		return invalidf("%v", err)
	}
	return nil
}

// validateDecisionText bounds the free-form parts of a decision.
func validateDecisionText(d *shoalv1.Decision) *Error {
	switch {
	case len(d.Reason) > MaxTextLen:
		return invalidf("reason: longer than %d characters", MaxTextLen)
	case len(d.Error) > MaxTextLen:
		return invalidf("error: longer than %d characters", MaxTextLen)
	case len(d.Actor) > MaxLabelLen:
		return invalidf("actor: longer than %d characters", MaxLabelLen)
	case len(d.Inputs) > MaxDecisionInputs:
		return invalidf("inputs: %d values, more than %d", len(d.Inputs), MaxDecisionInputs)
	}
	for name := range d.Inputs {
		// The message names no key: map order must not change what every
		// node records for the same command.
		if len(name) > MaxLabelLen {
			return invalidf("inputs: a metric name is longer than %d characters", MaxLabelLen)
		}
	}
	return nil
}

package fsm

import (
	"regexp"
	"strings"

	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// nameRE is what fleet names may look like: they become parts of AWS
// alarm names and metric dimensions.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateFleet checks a fleet's own fields; uniqueness is checked against
// the state by Apply. The API layer calls it too, to fail fast.
func ValidateFleet(fl *shoalv1.Fleet) *Error {
	switch {
	case fl.Name == "":
		return invalidf("name: required")
	case len(fl.Name) > 63: // checked first so the message does not echo it
		return invalidf("name: %d characters, longer than 63", len(fl.Name))
	case !nameRE.MatchString(fl.Name):
		return invalidf("name (%q): must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", fl.Name)
	case fl.Asg == "":
		return invalidf("asg: required")
	case len(fl.Asg) > 255:
		return invalidf("asg: longer than 255 characters")
	case fl.Min < 0:
		return invalidf("min (%d) must be >= 0", fl.Min)
	case fl.Max < 0:
		return invalidf("max (%d) must be >= 0", fl.Max)
	case fl.Min > fl.Max:
		return invalidf("min (%d) must be <= max (%d)", fl.Min, fl.Max)
	case fl.Desired < 0:
		return invalidf("desired (%d) must be >= 0", fl.Desired)
	case fl.Desired < fl.Min || fl.Desired > fl.Max:
		return invalidf("desired (%d) must be between min (%d) and max (%d)", fl.Desired, fl.Min, fl.Max)
	case fl.AppPort < 0 || fl.AppPort > 65535:
		return invalidf("app_port (%d) must be between 0 and 65535", fl.AppPort)
	}
	for i, a := range fl.AlarmActions {
		if len(a) > 2048 {
			return invalidf("alarm_actions[%d]: longer than 2048 characters", i)
		}
		if !strings.HasPrefix(a, "arn:") {
			return invalidf("alarm_actions[%d] (%q): must be an ARN (arn:...)", i, a)
		}
	}
	if len(fl.AlarmActions) > 5 {
		return invalidf("alarm_actions: %d actions, CloudWatch allows at most 5", len(fl.AlarmActions))
	}
	return validatePolicy(fl.Policy, fl.Min, fl.Max)
}

func (f *FSM) groupOwner(asg, except string) string {
	for _, fl := range f.s.fleets {
		if fl.Asg == asg && fl.Name != except {
			return fl.Name
		}
	}
	return ""
}

func (f *FSM) createFleet(c Command) (*Result, *Error) {
	fl := &shoalv1.Fleet{}
	if err := c.decodeProto(fl); err != nil {
		return nil, err
	}
	if fl.Desired == 0 {
		fl.Desired = fl.Min
	}
	if err := ValidateFleet(fl); err != nil {
		return nil, err
	}
	if _, ok := f.s.fleets[fl.Name]; ok {
		return nil, existsf("name: fleet %q already exists", fl.Name)
	}
	if owner := f.groupOwner(fl.Asg, ""); owner != "" {
		return nil, existsf("asg: group %q already used by fleet %q", fl.Asg, owner)
	}
	fl.Paused = false
	fl.CreateTime, fl.UpdateTime = c.at(), c.at()
	f.s.fleets[fl.Name] = fl
	return &Result{Fleet: proto.CloneOf(fl)}, nil
}

func (f *FSM) fleet(name string) (*shoalv1.Fleet, *Error) {
	if name == "" {
		return nil, invalidf("name: required")
	}
	fl, ok := f.s.fleets[name]
	if !ok {
		return nil, notFoundf("fleet %q: unknown fleet", name)
	}
	return fl, nil
}

func (f *FSM) updateFleet(c Command) (*Result, *Error) {
	req := &shoalv1.UpdateFleetRequest{}
	if err := c.decodeProto(req); err != nil {
		return nil, err
	}
	cur, err := f.fleet(req.GetFleet().GetName())
	if err != nil {
		return nil, err
	}
	// Change a copy and validate it whole, so a bad field leaves nothing changed.
	fl := proto.CloneOf(cur)
	if err := applyFleetMask(fl, req.GetFleet(), req.GetUpdateMask().GetPaths()); err != nil {
		return nil, err
	}
	if err := ValidateFleet(fl); err != nil {
		return nil, err
	}
	if owner := f.groupOwner(fl.Asg, fl.Name); owner != "" {
		return nil, existsf("asg: group %q already used by fleet %q", fl.Asg, owner)
	}
	fl.UpdateTime = c.at()
	f.s.fleets[fl.Name] = fl
	return &Result{Fleet: proto.CloneOf(fl)}, nil
}

func (f *FSM) deleteFleet(c Command) (*Result, *Error) {
	var b nameBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if _, err := f.fleet(b.Name); err != nil {
		return nil, err
	}
	delete(f.s.fleets, b.Name)
	delete(f.s.decisions, b.Name)
	delete(f.s.launches, b.Name)
	for id, in := range f.s.instances {
		if in.Fleet == b.Name {
			delete(f.s.instances, id)
		}
	}
	return &Result{}, nil
}

func (f *FSM) pauseFleet(c Command) (*Result, *Error) {
	var b nameBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	fl, err := f.fleet(b.Name)
	if err != nil {
		return nil, err
	}
	fl.Paused = b.Paused
	fl.UpdateTime = c.at()
	return &Result{Fleet: proto.CloneOf(fl)}, nil
}

func (f *FSM) setPolicy(c Command) (*Result, *Error) {
	req := &shoalv1.SetPolicyRequest{}
	if err := c.decodeProto(req); err != nil {
		return nil, err
	}
	fl, err := f.fleet(req.Fleet)
	if err != nil {
		return nil, err
	}
	if err := validatePolicy(req.Policy, fl.Min, fl.Max); err != nil {
		return nil, err
	}
	fl.Policy = req.Policy
	fl.UpdateTime = c.at()
	return &Result{Fleet: proto.CloneOf(fl)}, nil
}

// UpdatableFleetFields are the paths UpdateFleet's update_mask may name.
var UpdatableFleetFields = []string{"asg", "min", "max", "desired", "app_port", "alarm_actions", "publish_per_instance"}

// applyFleetMask copies the fields that paths name from src into dst
// (AIP-134). An empty mask, an unknown path or a repeated one is refused, so
// a typo never turns into a silent no-op.
func applyFleetMask(dst, src *shoalv1.Fleet, paths []string) *Error {
	if len(paths) == 0 {
		return invalidf("update_mask: names no field; updatable: %s", strings.Join(UpdatableFleetFields, ", "))
	}
	if len(paths) > len(UpdatableFleetFields) {
		return invalidf("update_mask: %d paths, more than the %d updatable fields", len(paths), len(UpdatableFleetFields))
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			return invalidf("update_mask: %q named twice", p)
		}
		seen[p] = true
		switch p {
		case "asg":
			dst.Asg = src.GetAsg()
		case "min":
			dst.Min = src.GetMin()
		case "max":
			dst.Max = src.GetMax()
		case "desired":
			dst.Desired = src.GetDesired()
		case "app_port":
			dst.AppPort = src.GetAppPort()
		case "alarm_actions":
			dst.AlarmActions = append([]string(nil), src.GetAlarmActions()...)
		case "publish_per_instance":
			dst.PublishPerInstance = src.GetPublishPerInstance()
		default:
			return invalidf("update_mask: %q is not an updatable field; updatable: %s", truncate(p, MaxLabelLen), strings.Join(UpdatableFleetFields, ", "))
		}
	}
	return nil
}

// truncate shortens s for an error message, so a huge input does not
// become a huge error.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

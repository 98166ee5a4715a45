package fsm

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// DefaultDecisionsPerFleet bounds the decision history of each fleet. It is a
// constant rather than an option because every node must trim the same way.
const DefaultDecisionsPerFleet = 200

// Decision sources.
const (
	SourceAuto      = "auto"
	SourceManual    = "manual"
	SourceReconcile = "reconcile"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// state is everything the FSM holds. It is only changed by apply* methods
// on the FSM, under its lock.
type state struct {
	fleets         map[string]*shoalv1.Fleet
	instances      map[string]*shoalv1.Instance
	decisions      map[string][]*shoalv1.Decision // per fleet, oldest first
	nextDecisionID uint64
	watermarks     map[string]int64
	members        map[string]Member
}

func newState() *state {
	return &state{
		fleets:     map[string]*shoalv1.Fleet{},
		instances:  map[string]*shoalv1.Instance{},
		decisions:  map[string][]*shoalv1.Decision{},
		watermarks: map[string]int64{},
		members:    map[string]Member{},
	}
}

// clone deep-copies s so a snapshot can be written while Apply goes on.
func (s *state) clone() *state {
	c := newState()
	for k, f := range s.fleets {
		c.fleets[k] = proto.CloneOf(f)
	}
	for k, in := range s.instances {
		c.instances[k] = proto.CloneOf(in)
	}
	for k, ds := range s.decisions {
		cp := make([]*shoalv1.Decision, len(ds))
		for i, d := range ds {
			cp[i] = proto.CloneOf(d)
		}
		c.decisions[k] = cp
	}
	c.nextDecisionID = s.nextDecisionID
	for k, v := range s.watermarks {
		c.watermarks[k] = v
	}
	for k, v := range s.members {
		c.members[k] = v
	}
	return c
}

// FSM implements raft.FSM. Readers use the accessor methods, which return
// copies, so callers may keep or change what they get.
type FSM struct {
	mu          sync.RWMutex
	s           *state
	lastApplied uint64
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM.
func New() *FSM { return &FSM{s: newState()} }

// Apply applies one committed log entry and returns a *Result.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return &Result{}
	}
	return f.ApplyBytes(l.Index, l.Data)
}

// ApplyBytes decodes and applies one command. It is Apply without raft, for
// tests and tools.
func (f *FSM) ApplyBytes(index uint64, b []byte) *Result {
	c, err := Decode(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	if index > f.lastApplied {
		f.lastApplied = index
	}
	if err != nil {
		return &Result{Err: invalidf("%v", err)}
	}
	r, e := f.apply(c)
	if e != nil {
		return &Result{Err: e}
	}
	return r
}

func (f *FSM) apply(c Command) (*Result, *Error) {
	switch c.Op {
	case OpCreateFleet:
		return f.createFleet(c)
	case OpUpdateFleet:
		return f.updateFleet(c)
	case OpDeleteFleet:
		return f.deleteFleet(c)
	case OpPauseFleet:
		return f.pauseFleet(c)
	case OpSetPolicy:
		return f.setPolicy(c)
	case OpRegisterInstance:
		return f.registerInstance(c)
	case OpInstanceState:
		return f.instanceState(c)
	case OpInstanceLeave:
		return f.instanceLeave(c)
	case OpCreateDecision:
		return f.createDecision(c)
	case OpUpdateDecision:
		return f.updateDecision(c)
	case OpSetWatermark:
		return f.setWatermark(c)
	case OpSetMember:
		return f.setMember(c)
	case OpRemoveMember:
		return f.removeMember(c)
	case OpRestore:
		return f.restoreCmd(c)
	default:
		return nil, invalidf("op: unknown command %q", c.Op)
	}
}

// ValidateFleet checks a fleet's own fields; uniqueness is checked against
// the state by Apply. The API layer calls it too, to fail fast.
func ValidateFleet(fl *shoalv1.Fleet) *Error {
	switch {
	case fl.Name == "":
		return invalidf("name: required")
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
		if !strings.HasPrefix(a, "arn:") {
			return invalidf("alarm_actions[%d] (%q): must be an ARN (arn:...)", i, a)
		}
	}
	return nil
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
	fl.CreatedAtUnixMs, fl.UpdatedAtUnixMs = c.AtMS, c.AtMS
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
	cur, err := f.fleet(req.Name)
	if err != nil {
		return nil, err
	}
	// Change a copy and validate it whole, so a bad field leaves nothing changed.
	fl := proto.CloneOf(cur)
	if req.Asg != nil {
		fl.Asg = *req.Asg
	}
	if req.Min != nil {
		fl.Min = *req.Min
	}
	if req.Max != nil {
		fl.Max = *req.Max
	}
	if req.Desired != nil {
		fl.Desired = *req.Desired
	}
	if req.AppPort != nil {
		fl.AppPort = *req.AppPort
	}
	if req.SetAlarmActions {
		fl.AlarmActions = append([]string(nil), req.AlarmActions...)
	}
	if req.PublishPerInstance != nil {
		fl.PublishPerInstance = *req.PublishPerInstance
	}
	if err := ValidateFleet(fl); err != nil {
		return nil, err
	}
	if owner := f.groupOwner(fl.Asg, fl.Name); owner != "" {
		return nil, existsf("asg: group %q already used by fleet %q", fl.Asg, owner)
	}
	fl.UpdatedAtUnixMs = c.AtMS
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
	fl.UpdatedAtUnixMs = c.AtMS
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
	fl.Policy = req.Policy
	fl.UpdatedAtUnixMs = c.AtMS
	return &Result{Fleet: proto.CloneOf(fl)}, nil
}

func (f *FSM) registerInstance(c Command) (*Result, *Error) {
	in := &shoalv1.Instance{}
	if err := c.decodeProto(in); err != nil {
		return nil, err
	}
	if in.Id == "" {
		return nil, invalidf("id: required")
	}
	if _, err := f.fleet(in.Fleet); err != nil {
		return nil, err
	}
	if in.State == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		in.State = shoalv1.InstanceState_INSTANCE_STATE_PENDING
	}
	if _, ok := shoalv1.InstanceState_name[int32(in.State)]; !ok {
		return nil, invalidf("state (%d): unknown instance state", in.State)
	}
	// Live fields belong to the serving node, never to the log.
	in.Metrics, in.LastReportAgeMs, in.Ready, in.Flag = nil, 0, false, ""
	if old, ok := f.s.instances[in.Id]; ok {
		if old.Fleet != in.Fleet {
			return nil, conflictf("instance %q already registered in fleet %q", in.Id, old.Fleet)
		}
		in.RegisteredAtUnixMs = old.RegisteredAtUnixMs
		in.StateChangedAtUnixMs = old.StateChangedAtUnixMs
		if in.State != old.State {
			in.StateChangedAtUnixMs = c.AtMS
		}
	} else {
		in.RegisteredAtUnixMs, in.StateChangedAtUnixMs = c.AtMS, c.AtMS
	}
	f.s.instances[in.Id] = in
	return &Result{}, nil
}

func (f *FSM) instanceState(c Command) (*Result, *Error) {
	var b instanceStateBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	in, ok := f.s.instances[b.ID]
	if !ok {
		return nil, notFoundf("instance %q: unknown instance", b.ID)
	}
	if _, ok := shoalv1.InstanceState_name[int32(b.State)]; !ok || b.State == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		return nil, invalidf("state (%d): unknown instance state", b.State)
	}
	if in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED && b.State != in.State {
		return nil, conflictf("instance %q: terminated instances cannot change state", b.ID)
	}
	if in.State != b.State {
		in.State = b.State
		in.StateChangedAtUnixMs = c.AtMS
	}
	return &Result{}, nil
}

func (f *FSM) instanceLeave(c Command) (*Result, *Error) {
	var b nameBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if _, ok := f.s.instances[b.Name]; !ok {
		return nil, notFoundf("instance %q: unknown instance", b.Name)
	}
	delete(f.s.instances, b.Name)
	return &Result{}, nil
}

func (f *FSM) createDecision(c Command) (*Result, *Error) {
	d := &shoalv1.Decision{}
	if err := c.decodeProto(d); err != nil {
		return nil, err
	}
	fl, err := f.fleet(d.Fleet)
	if err != nil {
		return nil, err
	}
	switch {
	case d.From < 0:
		return nil, invalidf("from (%d) must be >= 0", d.From)
	case d.To < fl.Min || d.To > fl.Max:
		return nil, invalidf("desired (%d) must be between min (%d) and max (%d) of fleet %q", d.To, fl.Min, fl.Max, fl.Name)
	case d.Source != SourceAuto && d.Source != SourceManual && d.Source != SourceReconcile:
		return nil, invalidf("source (%q): must be auto, manual or reconcile", d.Source)
	}
	f.s.nextDecisionID++
	d.Id = f.s.nextDecisionID
	d.Status = shoalv1.DecisionStatus_DECISION_STATUS_PENDING
	d.Error, d.ErrorClass = "", shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	d.AtUnixMs, d.UpdatedAtUnixMs = c.AtMS, c.AtMS
	list := append(f.s.decisions[d.Fleet], d)
	if over := len(list) - DefaultDecisionsPerFleet; over > 0 {
		list = append([]*shoalv1.Decision(nil), list[over:]...)
	}
	f.s.decisions[d.Fleet] = list
	return &Result{Decision: proto.CloneOf(d)}, nil
}

func (f *FSM) findDecision(id uint64) *shoalv1.Decision {
	for _, ds := range f.s.decisions {
		for _, d := range ds {
			if d.Id == id {
				return d
			}
		}
	}
	return nil
}

func (f *FSM) updateDecision(c Command) (*Result, *Error) {
	var b updateDecisionBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	d := f.findDecision(b.ID)
	if d == nil {
		return nil, notFoundf("decision %d: unknown decision", b.ID)
	}
	switch b.Status {
	case shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, shoalv1.DecisionStatus_DECISION_STATUS_SUPERSEDED:
		if b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
			return nil, invalidf("error_class: only a failed decision has one")
		}
	case shoalv1.DecisionStatus_DECISION_STATUS_FAILED:
		if b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE && b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_FATAL {
			return nil, invalidf("error_class: a failed decision needs retryable or fatal")
		}
	default:
		return nil, invalidf("status (%s): must be applied, failed or superseded", b.Status)
	}
	if d.Status != shoalv1.DecisionStatus_DECISION_STATUS_PENDING {
		return nil, conflictf("decision %d: already %s", d.Id, strings.ToLower(strings.TrimPrefix(d.Status.String(), "DECISION_STATUS_")))
	}
	d.Status, d.Error, d.ErrorClass = b.Status, b.Error, b.ErrorClass
	d.UpdatedAtUnixMs = c.AtMS
	if b.Status == shoalv1.DecisionStatus_DECISION_STATUS_APPLIED {
		if fl, ok := f.s.fleets[d.Fleet]; ok {
			fl.Desired = d.To
			fl.UpdatedAtUnixMs = c.AtMS
		}
	}
	return &Result{Decision: proto.CloneOf(d)}, nil
}

func (f *FSM) setWatermark(c Command) (*Result, *Error) {
	var b watermarkBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if b.Key == "" {
		return nil, invalidf("key: required")
	}
	f.s.watermarks[b.Key] = b.Value
	return &Result{}, nil
}

func (f *FSM) setMember(c Command) (*Result, *Error) {
	var m Member
	if err := c.decodeJSON(&m); err != nil {
		return nil, err
	}
	switch {
	case m.ID == "":
		return nil, invalidf("id: required")
	case m.RaftAddr == "":
		return nil, invalidf("raft_addr: required")
	case m.RPCAddr == "":
		return nil, invalidf("rpc_addr: required")
	}
	f.s.members[m.ID] = m
	return &Result{}, nil
}

func (f *FSM) removeMember(c Command) (*Result, *Error) {
	var b nameBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	delete(f.s.members, b.Name)
	return &Result{}, nil
}

func (f *FSM) restoreCmd(c Command) (*Result, *Error) {
	var snap []byte
	if err := c.decodeJSON(&snap); err != nil {
		return nil, err
	}
	s, err := decodeSnapshot(snap)
	if err != nil {
		return nil, invalidf("snapshot: %v", err)
	}
	// Membership is the cluster's own, not the saved cluster's: keep it.
	s.members = f.s.members
	f.s = s
	return &Result{}, nil
}

// Fleet returns a copy of the named fleet.
func (f *FSM) Fleet(name string) (*shoalv1.Fleet, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fl, err := f.fleet(name)
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(fl), nil
}

// Fleets returns copies of every fleet, by name.
func (f *FSM) Fleets() []*shoalv1.Fleet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*shoalv1.Fleet, 0, len(f.s.fleets))
	for _, fl := range f.s.fleets {
		out = append(out, proto.CloneOf(fl))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Instances returns copies of the registry, by id; fleet "" means all.
func (f *FSM) Instances(fleet string) []*shoalv1.Instance {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*shoalv1.Instance
	for _, in := range f.s.instances {
		if fleet == "" || in.Fleet == fleet {
			out = append(out, proto.CloneOf(in))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// Instance returns a copy of one registered instance.
func (f *FSM) Instance(id string) (*shoalv1.Instance, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	in, ok := f.s.instances[id]
	if !ok {
		return nil, notFoundf("instance %q: unknown instance", id)
	}
	return proto.CloneOf(in), nil
}

// Decisions returns copies of a fleet's history, oldest first; limit > 0
// keeps only the newest limit.
func (f *FSM) Decisions(fleet string, limit int) ([]*shoalv1.Decision, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if _, err := f.fleet(fleet); err != nil {
		return nil, err
	}
	ds := f.s.decisions[fleet]
	if limit > 0 && len(ds) > limit {
		ds = ds[len(ds)-limit:]
	}
	out := make([]*shoalv1.Decision, len(ds))
	for i, d := range ds {
		out[i] = proto.CloneOf(d)
	}
	return out, nil
}

// Decision returns a copy of one decision.
func (f *FSM) Decision(id uint64) (*shoalv1.Decision, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d := f.findDecision(id)
	if d == nil {
		return nil, notFoundf("decision %d: unknown decision", id)
	}
	return proto.CloneOf(d), nil
}

// Watermark returns the value of key and whether it is set.
func (f *FSM) Watermark(key string) (int64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.s.watermarks[key]
	return v, ok
}

// Members returns the known node addresses, by id.
func (f *FSM) Members() map[string]Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]Member, len(f.s.members))
	for k, v := range f.s.members {
		out[k] = v
	}
	return out
}

// LastApplied is the raft index of the last entry applied.
func (f *FSM) LastApplied() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.lastApplied
}

// String is for debugging.
func (f *FSM) String() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return fmt.Sprintf("fsm{fleets=%d instances=%d applied=%d}", len(f.s.fleets), len(f.s.instances), f.lastApplied)
}

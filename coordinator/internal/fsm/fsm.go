package fsm

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// state is everything the FSM holds. It is only changed by apply* methods
// on the FSM, under its lock.
type state struct {
	fleets         map[string]*shoalv1.Fleet
	instances      map[string]*shoalv1.Instance
	decisions      map[string][]*shoalv1.Decision // per fleet, oldest first
	nextDecisionID uint64
	watermarks     map[string]int64
	members        map[string]Member
	acl            aclState
	identities     map[string]Identity      // by instance id; see identity.go
	launches       map[string]launchSamples // by fleet; see launch.go
}

func newState() *state {
	return &state{
		fleets:     map[string]*shoalv1.Fleet{},
		instances:  map[string]*shoalv1.Instance{},
		decisions:  map[string][]*shoalv1.Decision{},
		watermarks: map[string]int64{},
		members:    map[string]Member{},
		identities: map[string]Identity{},
		launches:   map[string]launchSamples{},
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
	c.acl = s.acl.clone()
	c.identities = cloneIdentities(s.identities)
	for k, ls := range s.launches {
		c.launches[k] = ls.clone()
	}
	return c
}

// FSM implements raft.FSM. Readers use the accessor methods, which return
// copies, so callers may keep or change what they get.
type FSM struct {
	mu          sync.RWMutex
	s           *state
	lastApplied uint64
	rejected    Rejections
}

// maxRecentRejections bounds Rejections.Recent.
const maxRecentRejections = 16

// Rejections counts the commands Apply refused since this FSM started. They
// are not state: every node refuses the same commands, but a restarted node
// counts only what it applied since. They are how an operator sees that
// something wrote a bad command into the log.
type Rejections struct {
	Total  uint64
	ByKind map[Kind]uint64
	// Recent are the newest refusals, oldest first.
	Recent []Rejection
}

// Rejection is one refused command.
type Rejection struct {
	Index uint64
	Op    Op
	Kind  Kind
	// Msg is the error, cut to maxRejectionMsg bytes.
	Msg string
}

const maxRejectionMsg = 256

func (f *FSM) reject(index uint64, op Op, e *Error) {
	if f.rejected.ByKind == nil {
		f.rejected.ByKind = map[Kind]uint64{}
	}
	f.rejected.Total++
	f.rejected.ByKind[e.Kind]++
	msg := e.Msg
	if len(msg) > maxRejectionMsg {
		msg = msg[:maxRejectionMsg]
	}
	if len(op) > 64 {
		op = op[:64]
	}
	r := append(f.rejected.Recent, Rejection{Index: index, Op: op, Kind: e.Kind, Msg: msg})
	if over := len(r) - maxRecentRejections; over > 0 {
		r = append([]Rejection(nil), r[over:]...)
	}
	f.rejected.Recent = r
}

// Rejected returns a copy of the refusal counts.
func (f *FSM) Rejected() Rejections {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := Rejections{Total: f.rejected.Total, ByKind: map[Kind]uint64{}, Recent: append([]Rejection(nil), f.rejected.Recent...)}
	for k, v := range f.rejected.ByKind {
		out.ByKind[k] = v
	}
	return out
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
		e := invalidf("%v", err)
		f.reject(index, "", e)
		return &Result{Err: e}
	}
	r, e := f.apply(c)
	if e != nil {
		f.reject(index, c.Op, e)
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
	case OpInstanceMark:
		return f.markInstance(c)
	case OpLaunchSample:
		return f.recordLaunch(c)
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
	case OpACLBootstrap, OpTokenCreate:
		return f.createToken(c, c.Op == OpACLBootstrap)
	case OpTokenDelete:
		return f.deleteToken(c)
	case OpIdentityEnroll:
		return f.identityEnroll(c)
	case OpIdentityReset:
		return f.identityReset(c)
	default:
		return nil, invalidf("op: unknown command %q", c.Op)
	}
}

func (f *FSM) setWatermark(c Command) (*Result, *Error) {
	var b watermarkBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	switch {
	case b.Key == "":
		return nil, invalidf("key: required")
	case len(b.Key) > MaxLabelLen:
		return nil, invalidf("key: longer than %d characters", MaxLabelLen)
	}
	f.s.watermarks[b.Key] = b.Value
	return &Result{}, nil
}

func (f *FSM) setMember(c Command) (*Result, *Error) {
	var m Member
	if err := c.decodeJSON(&m); err != nil {
		return nil, err
	}
	if err := ValidateMember(m); err != nil {
		return nil, err
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
	// An operator's snapshot is new input: it meets every rule a command
	// does, checked whole before the state changes.
	s, err := checkSnapshot(snap)
	if err != nil {
		return nil, invalidf("snapshot: %v", err)
	}
	// Membership and ACL tokens are the cluster's own, not the saved
	// cluster's: keep them (a restore must not revive a deleted token).
	s.members, s.acl = f.s.members, f.s.acl
	f.s = s
	return &Result{}, nil
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

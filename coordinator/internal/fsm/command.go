package fsm

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// CommandVersion is the newest command encoding this release writes. Apply
// accepts every version from 1 up to it; a newer one is refused so an old
// node never half-understands a command from a newer leader. Commands that
// version 1 already had are still written as version 1, so a cluster mid
// upgrade (new leader, old followers) keeps applying them; only what is new
// in a version carries it: version 2 OpInstanceMark, version 3
// OpLaunchSample.
const CommandVersion = 3

// ErrUnsupportedVersion is returned for commands or snapshots written by a
// newer release.
var ErrUnsupportedVersion = errors.New("unsupported version")

// Op names a command.
type Op string

// The commands the FSM understands.
const (
	OpCreateFleet      Op = "create_fleet"
	OpUpdateFleet      Op = "update_fleet"
	OpDeleteFleet      Op = "delete_fleet"
	OpPauseFleet       Op = "pause_fleet"
	OpSetPolicy        Op = "set_policy"
	OpRegisterInstance Op = "register_instance"
	OpInstanceState    Op = "instance_state"
	OpInstanceLeave    Op = "instance_leave"
	OpCreateDecision   Op = "create_decision"
	OpUpdateDecision   Op = "update_decision"
	OpSetWatermark     Op = "set_watermark"
	OpSetMember        Op = "set_member"
	OpRemoveMember     Op = "remove_member"
	OpRestore          Op = "restore"
)

// Command is one change to the state, as it travels through the raft log.
// JSON keeps it readable in a log dump and lets new optional fields appear
// without breaking older readers; proto payloads inside are protojson.
type Command struct {
	Version int             `json:"v"`
	Op      Op              `json:"op"`
	AtMS    int64           `json:"at_ms,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
}

// Member is a coordinator node as the cluster knows it: raft only stores
// the raft address, and forwarding needs the gRPC one too.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	// AgentAddr is the node's agent-only listener, "" when agents use
	// RPCAddr.
	AgentAddr string `json:"agent_addr,omitempty"`
}

type nameBody struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused,omitempty"`
}

type instanceStateBody struct {
	ID    string                `json:"id"`
	State shoalv1.InstanceState `json:"state"`
}

type updateDecisionBody struct {
	ID         uint64                 `json:"id"`
	Status     shoalv1.DecisionStatus `json:"status"`
	Error      string                 `json:"error,omitempty"`
	ErrorClass shoalv1.ErrorClass     `json:"error_class,omitempty"`
}

type watermarkBody struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

func newCommand(op Op, body any) Command {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case proto.Message:
		raw, _ = protojson.Marshal(b) // marshalling a valid message cannot fail
	default:
		raw, _ = json.Marshal(b) // only plain structs of this file reach here
	}
	return Command{Version: 1, Op: op, Body: raw}
}

// CreateFleet creates f. Time fields are set by the FSM.
func CreateFleet(f *shoalv1.Fleet) Command { return newCommand(OpCreateFleet, f) }

// UpdateFleet changes the fields set in req.
func UpdateFleet(req *shoalv1.UpdateFleetRequest) Command { return newCommand(OpUpdateFleet, req) }

// DeleteFleet removes a fleet with its instances and decisions.
func DeleteFleet(name string) Command { return newCommand(OpDeleteFleet, nameBody{Name: name}) }

// PauseFleet pauses (paused=true) or resumes a fleet.
func PauseFleet(name string, paused bool) Command {
	return newCommand(OpPauseFleet, nameBody{Name: name, Paused: paused})
}

// SetPolicy replaces a fleet's scaling policy.
func SetPolicy(fleet string, p *shoalv1.ScalingPolicy) Command {
	return newCommand(OpSetPolicy, &shoalv1.SetPolicyRequest{Fleet: fleet, Policy: p})
}

// RegisterInstance adds an instance to the registry, or refreshes its
// addresses when it is known.
func RegisterInstance(in *shoalv1.Instance) Command { return newCommand(OpRegisterInstance, in) }

// SetInstanceState moves an instance to state.
func SetInstanceState(id string, state shoalv1.InstanceState) Command {
	return newCommand(OpInstanceState, instanceStateBody{ID: id, State: state})
}

// InstanceLeave removes an instance from the registry.
func InstanceLeave(id string) Command { return newCommand(OpInstanceLeave, nameBody{Name: id}) }

// CreateDecision records a pending decision; the FSM assigns its id.
func CreateDecision(d *shoalv1.Decision) Command { return newCommand(OpCreateDecision, d) }

// UpdateDecision records a decision's outcome.
func UpdateDecision(id uint64, status shoalv1.DecisionStatus, errText string, class shoalv1.ErrorClass) Command {
	return newCommand(OpUpdateDecision, updateDecisionBody{ID: id, Status: status, Error: errText, ErrorClass: class})
}

// SetWatermark sets key to value in the watermark map.
func SetWatermark(key string, value int64) Command {
	return newCommand(OpSetWatermark, watermarkBody{Key: key, Value: value})
}

// SetMember records a node's addresses.
func SetMember(m Member) Command { return newCommand(OpSetMember, m) }

// RemoveMember forgets a node's addresses.
func RemoveMember(id string) Command { return newCommand(OpRemoveMember, nameBody{Name: id}) }

// Restore replaces the whole state with a snapshot that Save produced.
func Restore(snapshot []byte) Command {
	return Command{Version: 1, Op: OpRestore, Body: mustJSON(snapshot)}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with []byte, which always marshals
	}
	return b
}

// Encode returns the bytes that go into the raft log.
func (c Command) Encode() []byte { return mustJSON(c) }

// Decode reads a command written by this or an older release.
func Decode(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	if c.Version < 1 || c.Version > CommandVersion {
		return Command{}, fmt.Errorf("command version %d (this release reads 1..%d): %w", c.Version, CommandVersion, ErrUnsupportedVersion)
	}
	return c, nil
}

// at is the command's leader-stamped time as a proto Timestamp.
func (c Command) at() *timestamppb.Timestamp { return timestamppb.New(time.UnixMilli(c.AtMS)) }

// Stamp sets the command's time to now, overwriting any time the sender
// put there: the leader calls it just before raft.Apply, so every node
// applies the same time and no caller can back- or future-date a change.
func Stamp(b []byte, now time.Time) ([]byte, error) {
	c, err := Decode(b)
	if err != nil {
		return nil, err
	}
	c.AtMS = now.UnixMilli()
	return c.Encode(), nil
}

func (c Command) decodeProto(m proto.Message) *Error {
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(c.Body, m); err != nil {
		return invalidf("%s: body: %v", c.Op, err)
	}
	return nil
}

func (c Command) decodeJSON(v any) *Error {
	if err := json.Unmarshal(c.Body, v); err != nil {
		return invalidf("%s: body: %v", c.Op, err)
	}
	return nil
}

package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// SnapshotVersion is the newest snapshot encoding this release writes.
const SnapshotVersion = 1

// wireSnapshot is the snapshot encoding: JSON around protojson messages, the
// same trade as commands (readable, tolerant of added fields).
type wireSnapshot struct {
	Version        int               `json:"v"`
	Fleets         []json.RawMessage `json:"fleets"`
	Instances      []json.RawMessage `json:"instances"`
	Decisions      []json.RawMessage `json:"decisions"`
	NextDecisionID uint64            `json:"next_decision_id"`
	Watermarks     map[string]int64  `json:"watermarks"`
	Members        []Member          `json:"members"`
	ACL            *wireACL          `json:"acl,omitempty"`
	Identities     []Identity        `json:"identities,omitempty"`
	// LaunchSamples are absent from snapshots written before launch delays
	// were replicated; such a snapshot restores with none.
	LaunchSamples []wireLaunches `json:"launch_samples,omitempty"`
}

func encodeSnapshot(s *state) []byte {
	w := wireSnapshot{Version: SnapshotVersion, NextDecisionID: s.nextDecisionID, Watermarks: s.watermarks, ACL: encodeACL(&s.acl)}
	// Sorted output keeps two snapshots of the same state byte-identical.
	for _, fl := range sortedValues(s.fleets) {
		w.Fleets = append(w.Fleets, pj(fl))
	}
	for _, in := range sortedValues(s.instances) {
		w.Instances = append(w.Instances, pj(in))
	}
	for _, name := range sortedKeys(s.decisions) {
		for _, d := range s.decisions[name] {
			w.Decisions = append(w.Decisions, pj(d))
		}
	}
	for _, id := range sortedKeys(s.members) {
		w.Members = append(w.Members, s.members[id])
	}
	w.Identities = encodeIdentities(s.identities)
	w.LaunchSamples = encodeLaunches(s.launches)
	return mustJSON(w)
}

func pj(m proto.Message) json.RawMessage {
	b, _ := protojson.MarshalOptions{}.Marshal(m)
	return b
}

// decodeSnapshot reads a snapshot as raft hands it over: the node's own
// saved state or the leader's, both made of entries the cluster already
// applied, so it is taken as it is (refusing it would leave this node
// unable to start or to catch up with its peers).
func decodeSnapshot(b []byte) (*state, error) {
	w, err := decodeWire(b)
	if err != nil {
		return nil, err
	}
	return w.state()
}

func decodeWire(b []byte) (*wireSnapshot, error) {
	var w wireSnapshot
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if w.Version < 1 || w.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d (this release reads 1..%d): %w", w.Version, SnapshotVersion, ErrUnsupportedVersion)
	}
	return &w, nil
}

func (w *wireSnapshot) state() (*state, error) {
	s := newState()
	un := protojson.UnmarshalOptions{DiscardUnknown: true}
	for i, raw := range w.Fleets {
		fl := &shoalv1.Fleet{}
		if err := un.Unmarshal(raw, fl); err != nil {
			return nil, fmt.Errorf("decode snapshot fleets[%d]: %w", i, err)
		}
		s.fleets[fl.Name] = fl
	}
	for i, raw := range w.Instances {
		in := &shoalv1.Instance{}
		if err := un.Unmarshal(raw, in); err != nil {
			return nil, fmt.Errorf("decode snapshot instances[%d]: %w", i, err)
		}
		s.instances[in.Id] = in
	}
	for i, raw := range w.Decisions {
		d := &shoalv1.Decision{}
		if err := un.Unmarshal(raw, d); err != nil {
			return nil, fmt.Errorf("decode snapshot decisions[%d]: %w", i, err)
		}
		s.decisions[d.Fleet] = append(s.decisions[d.Fleet], d)
	}
	s.nextDecisionID = w.NextDecisionID
	for k, v := range w.Watermarks {
		s.watermarks[k] = v
	}
	for _, m := range w.Members {
		s.members[m.ID] = m
	}
	s.acl = decodeACL(w.ACL)
	for _, id := range w.Identities {
		s.identities[id.InstanceID] = id
	}
	s.launches = decodeLaunches(w.LaunchSamples)
	return s, nil
}

// Save returns the whole state encoded as a snapshot, for SaveSnapshot and
// the Restore command.
func (f *FSM) Save() []byte {
	f.mu.RLock()
	c := f.s.clone()
	f.mu.RUnlock()
	return encodeSnapshot(c)
}

// Snapshot captures a copy of the state; Persist does the encoding and I/O
// so Apply is blocked only for the copy.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &snapshot{s: f.s.clone()}, nil
}

// Restore replaces the state with a snapshot raft hands over.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.s = s
	f.mu.Unlock()
	return nil
}

type snapshot struct{ s *state }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(encodeSnapshot(s.s)); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// CheckSnapshot decodes a snapshot an operator wants to restore and checks
// all of it before anything is applied: every fleet's bounds, name and
// policy, every instance's id and address and that its fleet exists, every
// decision's fleet and that its id is at most next_decision_id, every
// member, watermark and ACL token, and every launch sample's fleet, kind,
// duration and count. It returns the first problem, naming it.
func CheckSnapshot(b []byte) error {
	_, err := checkSnapshot(b)
	return err
}

func checkSnapshot(b []byte) (*state, error) {
	w, err := decodeWire(b)
	if err != nil {
		return nil, err
	}
	s, err := w.state()
	if err != nil {
		return nil, err
	}
	// w.state keeps the last of two entries with one key; count to catch that.
	if len(s.fleets) != len(w.Fleets) {
		return nil, duplicate("fleets", w.Fleets, func(m *shoalv1.Fleet) string { return m.Name })
	}
	if len(s.instances) != len(w.Instances) {
		return nil, duplicate("instances", w.Instances, func(m *shoalv1.Instance) string { return m.Id })
	}
	for _, fl := range sortedValues(s.fleets) {
		if err := ValidateFleet(fl); err != nil {
			return nil, fmt.Errorf("fleets[%q]: %v", fl.Name, err)
		}
	}
	for _, in := range sortedValues(s.instances) {
		if err := validateInstance(in); err != nil {
			return nil, fmt.Errorf("instances[%q]: %v", in.Id, err)
		}
		if _, ok := s.fleets[in.Fleet]; !ok {
			return nil, fmt.Errorf("instances[%q]: fleet %q is not in the snapshot", in.Id, in.Fleet)
		}
	}
	ids := map[uint64]bool{}
	for _, name := range sortedKeys(s.decisions) {
		ds := s.decisions[name]
		if _, ok := s.fleets[name]; !ok {
			return nil, fmt.Errorf("decisions[%d]: fleet %q is not in the snapshot", ds[0].Id, name)
		}
		if len(ds) > DefaultDecisionsPerFleet {
			return nil, fmt.Errorf("decisions: fleet %q has %d, more than %d", name, len(ds), DefaultDecisionsPerFleet)
		}
		for _, d := range ds {
			if err := checkDecision(d, s.nextDecisionID, ids); err != nil {
				return nil, fmt.Errorf("decisions[%d]: %v", d.Id, err)
			}
		}
	}
	for _, k := range sortedKeys(s.watermarks) {
		if k == "" || len(k) > MaxLabelLen {
			return nil, fmt.Errorf("watermarks[%q]: key must be 1..%d characters", k, MaxLabelLen)
		}
	}
	if len(s.members) != len(w.Members) {
		seen := map[string]bool{}
		for _, m := range w.Members {
			if seen[m.ID] {
				return nil, fmt.Errorf("members[%q]: listed twice", m.ID)
			}
			seen[m.ID] = true
		}
	}
	for _, id := range sortedKeys(s.members) {
		if err := ValidateMember(s.members[id]); err != nil {
			return nil, fmt.Errorf("members[%q]: %v", id, err)
		}
	}
	if err := checkACL(w.ACL); err != nil {
		return nil, err
	}
	if err := checkIdentities(w.Identities); err != nil {
		return nil, err
	}
	fleets := make(map[string]bool, len(s.fleets))
	for name := range s.fleets {
		fleets[name] = true
	}
	if err := checkLaunches(w.LaunchSamples, fleets); err != nil {
		return nil, err
	}
	return s, nil
}

func checkDecision(d *shoalv1.Decision, next uint64, seen map[uint64]bool) error {
	switch {
	case d.Id == 0:
		return fmt.Errorf("id: required")
	case d.Id > next:
		return fmt.Errorf("id: above next_decision_id (%d)", next)
	case seen[d.Id]:
		return fmt.Errorf("id: listed twice")
	case !validSource(d.Source):
		return fmt.Errorf("source (%v): must be auto, manual, reconcile or spot", d.Source)
	case d.PreviousCapacity < 0 || d.Capacity < 0:
		return fmt.Errorf("previous_capacity (%d) and capacity (%d) must be >= 0", d.PreviousCapacity, d.Capacity)
	}
	if _, ok := shoalv1.DecisionStatus_name[int32(d.Status)]; !ok || d.Status == shoalv1.DecisionStatus_DECISION_STATUS_UNSPECIFIED {
		return fmt.Errorf("status (%d): unknown decision status", d.Status)
	}
	seen[d.Id] = true
	if err := validateDecisionText(d); err != nil {
		return err
	}
	return nil
}

// duplicate names the first key listed twice in raws.
func duplicate[M interface {
	proto.Message
	*T
}, T any](field string, raws []json.RawMessage, key func(M) string) error {
	seen := map[string]bool{}
	un := protojson.UnmarshalOptions{DiscardUnknown: true}
	for i, raw := range raws {
		m := M(new(T))
		_ = un.Unmarshal(raw, m) // w.state decoded every entry already
		k := key(m)
		if seen[k] {
			return fmt.Errorf("%s[%d] (%q): listed twice", field, i, k)
		}
		seen[k] = true
	}
	return fmt.Errorf("%s: entries listed twice", field)
}

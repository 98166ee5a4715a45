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
}

func encodeSnapshot(s *state) []byte {
	w := wireSnapshot{Version: SnapshotVersion, NextDecisionID: s.nextDecisionID, Watermarks: s.watermarks}
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
	return mustJSON(w)
}

func pj(m proto.Message) json.RawMessage {
	b, _ := protojson.MarshalOptions{}.Marshal(m)
	return b
}

func decodeSnapshot(b []byte) (*state, error) {
	var w wireSnapshot
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if w.Version < 1 || w.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d (this release reads 1..%d): %w", w.Version, SnapshotVersion, ErrUnsupportedVersion)
	}
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

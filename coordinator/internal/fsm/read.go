package fsm

import (
	"sort"

	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

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

package feed

import (
	"net"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// BackendSet maps a fleet's instances to backends: in service is active
// (warming while inside the policy's warm-up), draining is draining with its
// drain deadline, and anything else (pending, unhealthy, terminated, or
// without an address) gets no traffic.
//
// One address is one backend: EC2 reuses private IPs, so the state can hold
// an old instance's record next to a new one at the same IP, and an LB must
// never be sent both. The address belongs to the newest-registered
// instance, whatever its state: an older record at the same IP is stale,
// since the IP could only be reused after it was released (so a pending new
// instance keeps the address dark rather than letting the stale record send
// it traffic). Equal registration times prefer in service, then draining,
// then the greater instance id, so the choice is deterministic.
//
// When no instance would take new requests (none active or warming), the
// set fails open, as an AWS load balancer does when every target is
// unhealthy: unhealthy instances are sent as active, and the LB's own
// health checks and retries decide. The coordinator's "unhealthy" often
// means only that it has not heard from an agent lately: a new leader
// judges the instances whose agents have not reached it yet after
// StaleAfter in office, and agents backing off through an election can take
// longer than that. Sending nothing turned that blink into a 503 for every
// request (the side-by-side demo saw "0 registered" after a leader change).
func BackendSet(f *shoalv1.Fleet, ins []*shoalv1.Instance, now time.Time, drainTimeout time.Duration) []*shoalv1.Backend {
	warmup := f.GetPolicy().GetWarmup().AsDuration()
	owner := make(map[string]*shoalv1.Instance, len(ins))
	for _, in := range ins {
		if cur, ok := owner[in.PrivateIp]; in.PrivateIp != "" && (!ok || ownsBefore(in, cur)) {
			owner[in.PrivateIp] = in
		}
	}
	var out []*shoalv1.Backend
	for _, in := range ins {
		// A warm-pool instance is never fed to an LB, whatever its state.
		if in.PrivateIp == "" || f.AppPort == 0 || owner[in.PrivateIp] != in || in.Warm {
			continue
		}
		b := &shoalv1.Backend{InstanceId: in.Id, Address: net.JoinHostPort(in.PrivateIp, strconv.Itoa(int(f.AppPort))), AvailabilityZone: in.AvailabilityZone, Load: Load(in)}
		changed := in.GetStateChangeTime().AsTime()
		switch in.State {
		case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
			b.State = shoalv1.BackendState_BACKEND_STATE_ACTIVE
			if now.Sub(changed) < warmup {
				b.State = shoalv1.BackendState_BACKEND_STATE_WARMING
			}
		case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			b.State = shoalv1.BackendState_BACKEND_STATE_DRAINING
			dl := changed.Add(drainTimeout)
			// An interruption's own deadline (notice time less the margin)
			// comes first when it is earlier.
			if own := in.GetDrainDeadline(); own != nil && own.AsTime().Before(dl) {
				dl = own.AsTime()
			}
			b.DrainDeadline = timestamppb.New(dl)
		default:
			continue
		}
		out = append(out, b)
	}
	if slices.ContainsFunc(out, takesRequests) {
		return out
	}
	for _, in := range ins {
		if in.State != shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY || in.PrivateIp == "" || f.AppPort == 0 || owner[in.PrivateIp] != in || in.Warm {
			continue
		}
		out = append(out, &shoalv1.Backend{InstanceId: in.Id, Address: net.JoinHostPort(in.PrivateIp, strconv.Itoa(int(f.AppPort))),
			AvailabilityZone: in.AvailabilityZone, Load: Load(in), State: shoalv1.BackendState_BACKEND_STATE_ACTIVE})
	}
	return out
}

func takesRequests(b *shoalv1.Backend) bool {
	return b.State == shoalv1.BackendState_BACKEND_STATE_ACTIVE || b.State == shoalv1.BackendState_BACKEND_STATE_WARMING
}

// ownsBefore reports whether a has the better claim to an address both
// instances list (see BackendSet).
func ownsBefore(a, b *shoalv1.Instance) bool {
	if ta, tb := a.GetRegisterTime().AsTime(), b.GetRegisterTime().AsTime(); !ta.Equal(tb) {
		return ta.After(tb)
	}
	if ra, rb := serveRank(a.State), serveRank(b.State); ra != rb {
		return ra > rb
	}
	return a.Id > b.Id
}

func serveRank(s shoalv1.InstanceState) int {
	switch s {
	case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
		return 2
	case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
		return 1
	}
	return 0
}

// Load is the backend's relative load for the LB's picker: its CPU as a
// fraction of half a core's worth (1 = nominal at 50 %), never below a floor
// so a fresh instance is not treated as free.
func Load(in *shoalv1.Instance) float64 {
	cpu, ok := in.Metrics["cpu"]
	if !ok {
		return 1
	}
	return max(cpu/50, 0.1)
}

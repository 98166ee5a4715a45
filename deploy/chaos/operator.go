package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Op is one operator command and what it returned. Times are nanoseconds
// since the run's start (porcupine compares them).
type Op struct {
	Client int `json:"client"`
	// Kind is scale, pause, resume, policy_set, get_fleet or get_policy.
	Kind string `json:"kind"`
	// Arg is scale's desired capacity or policy_set's target.
	Arg float64 `json:"arg,omitempty"`
	// CallNS and ReturnNS bracket the call.
	CallNS   int64 `json:"call_ns"`
	ReturnNS int64 `json:"return_ns"`
	// OK is false when the call returned an error; Code is its gRPC code.
	OK   bool   `json:"ok"`
	Code string `json:"code,omitempty"`
	Err  string `json:"err,omitempty"`
	// Paused and Target are what a read (or a write's answer) showed.
	Paused bool    `json:"paused"`
	Target float64 `json:"target"`
	// Capacity is a successful scale's committed capacity.
	Capacity int `json:"capacity,omitempty"`
}

// Definite reports whether a failed write certainly had no effect: the
// server refused it before committing (a bad argument, a precondition).
// Anything else (unavailable, deadline) may have been committed.
func (o Op) Definite() bool {
	switch o.Code {
	case codes.InvalidArgument.String(), codes.FailedPrecondition.String(), codes.OutOfRange.String(),
		codes.PermissionDenied.String(), codes.Unauthenticated.String(), codes.NotFound.String():
		return true
	}
	return false
}

// operator issues scale, pause, resume and policy set commands (and reads
// between them) from several clients, each through a different node's
// operator proxy, and records every call.
type operator struct {
	fleet    string
	min, max int
	t0       time.Time
	clients  []shoalv1.ControlServiceClient
	policy   *shoalv1.ScalingPolicy
	rng      *rand.Rand

	mu  sync.Mutex
	ops []Op
}

// newOperator connects one client per address with dial.
func newOperator(dial func(string) (*grpc.ClientConn, error), addrs []string, fleet string, min, max int, t0 time.Time, seed uint64) (*operator, []*grpc.ClientConn, error) {
	o := &operator{fleet: fleet, min: min, max: max, t0: t0, rng: rand.New(rand.NewPCG(seed, 0x0be7a70e))}
	var ccs []*grpc.ClientConn
	for _, a := range addrs {
		cc, err := dial(a)
		if err != nil {
			for _, c := range ccs {
				c.Close()
			}
			return nil, nil, fmt.Errorf("operator: dial %s: %w", a, err)
		}
		ccs = append(ccs, cc)
		o.clients = append(o.clients, shoalv1.NewControlServiceClient(cc))
	}
	return o, ccs, nil
}

// loadPolicy reads the fleet's policy once, so policy_set changes only the
// first target-tracking target.
func (o *operator) loadPolicy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := o.clients[0].GetPolicy(ctx, &shoalv1.GetPolicyRequest{Fleet: o.fleet})
	if err != nil {
		return fmt.Errorf("operator: get policy: %w", err)
	}
	if len(resp.GetPolicy().GetTargetTracking()) == 0 {
		return fmt.Errorf("operator: fleet %s has no target-tracking policy", o.fleet)
	}
	o.policy = resp.GetPolicy()
	return nil
}

// targets are the values policy_set moves between, around the bootstrap's.
var targets = []float64{45, 50, 55}

// run issues one command every 1–3 s per client until ctx ends. Client i
// uses node i's proxy, so a partition cuts some clients off and not others.
func (o *operator) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range o.clients {
		o.mu.Lock()
		seed := o.rng.Uint64()
		o.mu.Unlock()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for ctx.Err() == nil {
				o.step(ctx, i, rng)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
}

func (o *operator) step(ctx context.Context, client int, rng *rand.Rand) {
	var kind string
	var arg float64
	switch k := rng.IntN(10); {
	case k < 2:
		kind = "scale"
		// Now and then outside [min, max]: it must be refused.
		arg = float64(o.min + rng.IntN(o.max-o.min+1))
		if rng.IntN(4) == 0 {
			arg = float64(o.max + 1 + rng.IntN(3))
		}
	case k < 3:
		kind = "pause"
	case k < 5:
		kind = "resume"
	case k < 6:
		kind = "policy_set"
		arg = targets[rng.IntN(len(targets))]
	case k < 8:
		kind = "get_fleet"
	default:
		kind = "get_policy"
	}
	o.do(ctx, client, kind, arg)
}

// do performs one command, bounded by 5 s, and records it.
func (o *operator) do(ctx context.Context, client int, kind string, arg float64) Op {
	c := o.clients[client]
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	op := Op{Client: client, Kind: kind, Arg: arg, CallNS: time.Since(o.t0).Nanoseconds()}
	var err error
	switch kind {
	case "scale":
		var r *shoalv1.ScaleFleetResponse
		r, err = c.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: o.fleet, Desired: int32(arg), Reason: "chaos operator"})
		op.Capacity = int(r.GetDecision().GetCapacity())
	case "pause":
		var r *shoalv1.PauseFleetResponse
		r, err = c.PauseFleet(ctx, &shoalv1.PauseFleetRequest{Fleet: o.fleet})
		op.Paused = r.GetFleet().GetPaused()
	case "resume":
		var r *shoalv1.ResumeFleetResponse
		r, err = c.ResumeFleet(ctx, &shoalv1.ResumeFleetRequest{Fleet: o.fleet})
		op.Paused = r.GetFleet().GetPaused()
	case "policy_set":
		p := proto.Clone(o.policy).(*shoalv1.ScalingPolicy)
		p.TargetTracking[0].Target = arg
		_, err = c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: o.fleet, Policy: p})
	case "get_fleet":
		var r *shoalv1.GetFleetResponse
		r, err = c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: o.fleet})
		op.Paused = r.GetFleet().GetPaused()
	case "get_policy":
		var r *shoalv1.GetPolicyResponse
		r, err = c.GetPolicy(ctx, &shoalv1.GetPolicyRequest{Fleet: o.fleet})
		if tt := r.GetPolicy().GetTargetTracking(); len(tt) > 0 {
			op.Target = tt[0].GetTarget()
		}
	}
	op.ReturnNS = time.Since(o.t0).Nanoseconds()
	op.OK = err == nil
	if err != nil {
		op.Code, op.Err = status.Code(err).String(), err.Error()
	}
	o.mu.Lock()
	o.ops = append(o.ops, op)
	o.mu.Unlock()
	return op
}

func (o *operator) history() []Op {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Op(nil), o.ops...)
}

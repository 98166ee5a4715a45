package cloud

import "context"

// Warm-pool instance lifecycle states start with this prefix
// (Warmed:Pending, Warmed:Stopped, Warmed:Running, Warmed:Hibernated...).
const LifecycleWarmedPrefix = "Warmed:"

// WarmPool is a group's warm pool: pre-initialised instances a scale-out
// takes before launching new ones.
type WarmPool struct {
	Group string
	// MinSize is the pool's minimum; MaxPrepared caps pool plus group
	// (-1 or 0 when it follows the group's MaxSize).
	MinSize     int32
	MaxPrepared int32
	// PoolState is what pool instances wait in: Stopped, Running or
	// Hibernated.
	PoolState      string
	ReuseOnScaleIn bool
	// Status is set while the pool is being deleted.
	Status    string
	Instances []Instance
}

// Ready counts the pool instances a scale-out can take now: warmed and not
// on their way out.
func (w *WarmPool) Ready() int {
	if w == nil {
		return 0
	}
	n := 0
	for _, in := range w.Instances {
		switch in.LifecycleState {
		case LifecycleWarmedPrefix + "Stopped", LifecycleWarmedPrefix + "Running", LifecycleWarmedPrefix + "Hibernated":
			n++
		}
	}
	return n
}

// WarmPools is implemented by clouds that know Auto Scaling warm pools. The
// scaler gets it apart from its cloud.Scaling (scaler.Config.WarmPools), so
// a cloud without warm pools (a test fake) simply has none.
type WarmPools interface {
	// DescribeWarmPool returns the group's warm pool, or nil when it has
	// none.
	DescribeWarmPool(ctx context.Context, group string) (*WarmPool, error)
}

// Warm-pool instance states a pool may keep its instances in.
var WarmPoolStates = []string{"Stopped", "Running", "Hibernated"}

// WarmPoolSpec creates or replaces a group's warm pool.
type WarmPoolSpec struct {
	Group     string
	MinSize   int32
	PoolState string
	// MaxPrepared caps pool plus group; 0 leaves it to the group's MaxSize.
	MaxPrepared    int32
	ReuseOnScaleIn bool
}

// WarmPoolBootstrap is what `fleet bootstrap --warm-pool-min` needs beyond
// cloud.Bootstrap; the operator role grants it, the coordinator's does not.
type WarmPoolBootstrap interface {
	WarmPools
	PutWarmPool(ctx context.Context, spec WarmPoolSpec) error
}

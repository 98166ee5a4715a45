package chaos

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault kinds, as report.json names them.
const (
	KindPartition  = "partition"
	KindKill       = "kill"
	KindPause      = "pause"
	KindCloudFault = "cloud_fault"
	KindDiskFull   = "disk_full"
	KindDisconnect = "disconnect"
)

// Kinds lists every fault kind, in the fixed script's order.
var Kinds = []string{KindPartition, KindKill, KindPause, KindCloudFault, KindDiskFull, KindDisconnect}

// Step is one planned fault: what, when (since the load started) and for
// how long. Its target is resolved when it starts (the leader then, a node
// drawn then), so a script replays against whatever the cluster became.
type Step struct {
	At   time.Duration
	For  time.Duration
	Kind string
	// Variant picks the flavour:
	//   partition: isolate-leader, halves, one-way, flapping, slow-links
	//   (latency between every pair of nodes, no loss);
	//   kill: leader, follower;
	//   pause: leader;
	//   cloud_fault: 5xx, throttle, latency, drop_response;
	//   disk_full: full, corrupt-read;
	//   disconnect: agents, lb.
	Variant string
	// Pick chooses among candidates (a node, a half) deterministically.
	Pick uint64
}

// Variants lists each kind's variants.
var Variants = map[string][]string{
	KindPartition:  {"isolate-leader", "halves", "one-way", "flapping", "slow-links"},
	KindKill:       {"leader", "follower"},
	KindPause:      {"leader"},
	KindCloudFault: {"5xx", "throttle", "latency", "drop_response"},
	KindDiskFull:   {"full", "corrupt-read"},
	KindDisconnect: {"agents", "lb"},
}

// Script is a run's plan: the faults in start order, and the load spikes.
type Script struct {
	Steps  []Step
	Spikes []Spike
	// Settle is the quiet time after the last fault before the checks.
	Settle time.Duration
}

// Validate names a step that cannot run.
func (s Script) Validate() error {
	var prevEnd time.Duration
	for i, st := range s.Steps {
		vs, ok := Variants[st.Kind]
		if !ok {
			return fmt.Errorf("step %d: kind %q: not one of %v", i, st.Kind, Kinds)
		}
		found := false
		for _, v := range vs {
			found = found || v == st.Variant
		}
		if !found {
			return fmt.Errorf("step %d: %s variant %q: not one of %v", i, st.Kind, st.Variant, vs)
		}
		if st.For <= 0 || st.At < prevEnd {
			return fmt.Errorf("step %d: at %s for %s: steps must last > 0 and not overlap (previous ends at %s)", i, st.At, st.For, prevEnd)
		}
		prevEnd = st.At + st.For
	}
	return nil
}

// End is when the last fault ends.
func (s Script) End() time.Duration {
	if len(s.Steps) == 0 {
		return 0
	}
	last := s.Steps[len(s.Steps)-1]
	return last.At + last.For
}

// FixedScript is `make test`'s plan: each kind once, in Kinds order, with
// fixed timing, fitting in about 100 s of load.
func FixedScript() Script {
	at := 8 * time.Second
	var steps []Step
	add := func(kind, variant string, d time.Duration) {
		steps = append(steps, Step{At: at, For: d, Kind: kind, Variant: variant, Pick: 1})
		at += d + 6*time.Second
	}
	add(KindPartition, "isolate-leader", 5*time.Second)
	add(KindKill, "leader", 4*time.Second)
	add(KindPause, "leader", 3*time.Second)
	add(KindCloudFault, "drop_response", 6*time.Second)
	add(KindDiskFull, "full", 5*time.Second)
	add(KindDisconnect, "agents", time.Second)
	return Script{Steps: steps, Spikes: []Spike{{StartS: 20, EndS: 40}}, Settle: 12 * time.Second}
}

// SeededScript draws faults for d of load from seed: kinds, variants,
// durations (1–12 s, a pause always past the election timeout) and gaps
// (3–15 s), and a spike of 15–40 s every 60–120 s.
func SeededScript(seed uint64, d time.Duration) Script {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var steps []Step
	at := time.Duration(5+rng.IntN(10)) * time.Second
	for {
		kind := Kinds[rng.IntN(len(Kinds))]
		vs := Variants[kind]
		st := Step{At: at, Kind: kind, Variant: vs[rng.IntN(len(vs))], Pick: rng.Uint64()}
		st.For = time.Duration(1000+rng.IntN(11000)) * time.Millisecond
		if kind == KindPause {
			st.For = time.Duration(1500+rng.IntN(6000)) * time.Millisecond
		}
		if kind == KindDisconnect {
			st.For = time.Second
		}
		if st.At+st.For > d {
			break
		}
		steps = append(steps, st)
		at = st.At + st.For + time.Duration(3000+rng.IntN(12000))*time.Millisecond
	}
	var spikes []Spike
	for s := float64(20 + rng.IntN(40)); s < d.Seconds(); s += float64(60 + rng.IntN(60)) {
		spikes = append(spikes, Spike{StartS: s, EndS: s + float64(15+rng.IntN(25))})
	}
	return Script{Steps: steps, Spikes: spikes, Settle: 20 * time.Second}
}

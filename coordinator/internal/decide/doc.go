// Package decide is Shoal's scaling maths: it validates scaling policies and
// turns a fleet's metrics, bounds and recent history into a recommended
// capacity with a human-readable reason and the numbers behind it. It also
// picks a scale-in's victims (Victims): AZ balance, then load.
//
// Both the leader's scaler loop and the simulator drive the same Decide
// function, so what `simulate` shows is what the cluster would do.
//
// The package must stay pure: no clock (the caller passes now), no I/O, no
// goroutines, no AWS, no raft. History (past recommendations and scaling
// events) is an explicit State value the caller keeps and passes back. No
// other package may do scaling maths.
//
// Zero values in a policy mean the defaults: tolerance 0.1, scale-out
// window 0 s, scale-in window 60 s (DefaultScaleInWindow). Target tracking
// follows the Kubernetes HPA's replica calculator for warm-up and missing
// data, and its stabilisation and rate-limit rules for the windows and
// limits; step scaling follows EC2 Auto Scaling step policies.
//
// The policy's sustain, with Input.LaunchDelay, turns on the sustain rule
// (sustain.go): a rise is bought only as far as it has lasted a share of
// the launch delay, so capacity is not bought for bursts over before it
// could serve them. Policy duration fields are read only through
// policyfields.go.
package decide

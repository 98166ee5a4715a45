// Package decide is Shoal's scaling maths: it validates scaling policies and
// turns a fleet's metrics, bounds and recent history into a recommended
// capacity with a human-readable reason and the numbers behind it.
//
// Both the leader's scaler loop and the simulator drive the same Decide
// function, so what `simulate` shows is what the cluster would do.
//
// The package must stay pure: no clock (the caller passes now), no I/O, no
// goroutines, no AWS, no raft. History (past recommendations and scaling
// events) is an explicit State value the caller keeps and passes back. No
// other package may do scaling maths.
package decide

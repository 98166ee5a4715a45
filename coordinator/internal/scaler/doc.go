// Package scaler is the leader-only loop that turns decide's numbers into
// cloud calls, safely: every decision is committed through raft (pending)
// before the cloud is called, and its outcome (applied, failed, superseded)
// after. A new leader finishes what the old one committed before it decides
// anything new, and since a decision names an absolute capacity, finishing it
// twice changes nothing.
//
// Scale-in never drops a request: victims are marked draining in the FSM
// (the LB feed then stops sending them requests), and are terminated only
// when every live LB has reported them idle, or the drain deadline passes,
// and the agent's on-drain hook has run. Terminations Shoal did not start
// reach the same drain through the group's TERMINATING lifecycle hook.
//
// The package does no scaling maths (decide does, including which instances
// a scale-in drains) and never reads a clock except through Config.Now.
package scaler

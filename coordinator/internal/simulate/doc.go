// Package simulate replays a load trace through a simple fleet model and
// scores how well scaling policies follow it: Shoal's own decide engine,
// driven second by second through a simulated clock, next to models of AWS
// target tracking and the Kubernetes HPA on the same trace and model.
//
// The scorecard uses the SPEC Research Group elasticity metrics as BUNGEE
// defines them (accuracy, timeshare, jitter) plus instance-hours and SLO
// breach seconds, instance-seconds and their cost.
//
// The comparison policies are AWS target tracking at its legacy 1-minute
// cadence and on a high-resolution metric (aws-target-tracking-hires[:10|
// :30|:60]) and the HPA. Tune searches Shoal's policy knobs on traces and
// returns the Pareto front of under-provisioning against cost.
// --from-cloudwatch builds a trace from a fleet's history through a
// History the caller injects (the coordinator's CLI reads CloudWatch).
//
// The package must never sleep, read the wall clock or touch the network: a
// simulated day runs in seconds and the same inputs always give the same
// scorecard. It must never carry its own copy of Shoal's scaling maths; the
// "shoal" policy is the decide package, unchanged. Nor of AWS's: the
// "aws-target-tracking" policy's rules are deploy/awsmodel, the ones
// shoal-localcloud runs.
package simulate

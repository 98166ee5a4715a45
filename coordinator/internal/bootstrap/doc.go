// Package bootstrap turns the lab's manual steps into one idempotent
// command: bake an image from a running instance, make a launch template
// from it, create the Auto Scaling group across private subnets with the
// coordinators tag and Shoal's TERMINATING lifecycle hook, and create the
// fleet and its policy in the coordinator. Every step looks first for what an
// earlier run made, so a re-run after a failure resumes without duplicating.
// It runs on the operator's machine and never touches raft directly: the
// fleet goes through the control API like any other write.
package bootstrap

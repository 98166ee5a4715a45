// Package drain runs the agent's --on-drain hook (a shell command line) for a
// coordinator's drain command and turns its outcome into a CommandResult.
//
// It must never let a hook outlive its deadline: the hook runs in its own
// process group, which is killed when the deadline passes.
package drain

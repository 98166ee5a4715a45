package sandbox

// Pid is the node's process id, 0 when it does not run; a measurement
// reads the process's CPU time from /proc with it.
func (n *Node) Pid() int {
	if !n.Alive() {
		return 0
	}
	return n.proc.Pid()
}

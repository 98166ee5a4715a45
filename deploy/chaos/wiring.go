package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// Endpoint names besides the nodes' ids (n1, n2, ...).
const (
	// EndpointAgents is every fleet agent: their streams to the nodes'
	// agent listeners.
	EndpointAgents = "agents"
	// EndpointLB is shoal-lb: its WatchBackends to the nodes' rpc ports.
	EndpointLB = "lb"
	// EndpointOperator is the harness's operator client.
	EndpointOperator = "operator"
	// EndpointCloud is the local cloud, which every node calls.
	EndpointCloud = "cloud"
)

// wiring is where every process must dial so that each link crosses its
// proxy.
type wiring struct {
	net *Net
	// agents, lb and operator hold each node's proxied address for that
	// client, in node order.
	agents, lb, operator []string
	// diskFault is each node's SHOAL_DISK_FAULT_FILE.
	diskFault map[string]string
}

// dialMap renders SHOAL_DIAL_MAP / SHOAL_REDIRECT_MAP: real=proxy pairs.
func dialMap(m map[string]string) string {
	var pairs []string
	for real, proxy := range m {
		pairs = append(pairs, real+"="+proxy)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// prepare puts proxies in front of every node address before the nodes
// start, and returns each node's environment:
//   - SHOAL_DIAL_MAP: every other node's raft and rpc address through the
//     link this node → that node;
//   - SHOAL_REDIRECT_MAP: leader addresses handed to clients point at the
//     agents' proxies (agent listeners) and the LB's (rpc ports), so a
//     redirected client stays behind its link;
//   - AWS_ENDPOINT_URL: the local cloud through the link node → cloud;
//   - SHOAL_DISK_FAULT_FILE: the file the harness writes to fill or
//     corrupt this node's disk.
func (w *wiring) prepare(s *sandbox.Sandbox) (map[string][]string, error) {
	nodes := s.Nodes()
	cloudAddr := strings.TrimPrefix(s.CloudURL, "http://")
	redirect := map[string]string{}
	w.diskFault = map[string]string{}
	faultDir := filepath.Join(s.Dir, "faults")
	if err := os.MkdirAll(faultDir, 0o755); err != nil {
		return nil, err
	}
	// The nodes' ports are chosen but not yet bound: no proxy may take one.
	var avoid []string
	for _, n := range nodes {
		avoid = append(avoid, n.RaftAddr, n.RPCAddr, n.HTTPAddr, n.AgentAddr)
	}
	add := func(from, to, target string) (string, error) { return w.net.Add(from, to, target, avoid...) }
	for _, n := range nodes {
		a, err := add(EndpointAgents, n.ID, n.AgentAddr)
		if err != nil {
			return nil, err
		}
		l, err := add(EndpointLB, n.ID, n.RPCAddr)
		if err != nil {
			return nil, err
		}
		o, err := add(EndpointOperator, n.ID, n.RPCAddr)
		if err != nil {
			return nil, err
		}
		w.agents, w.lb, w.operator = append(w.agents, a), append(w.lb, l), append(w.operator, o)
		redirect[n.AgentAddr], redirect[n.RPCAddr] = a, l
	}
	env := map[string][]string{}
	for _, from := range nodes {
		dm := map[string]string{}
		for _, to := range nodes {
			if to.ID == from.ID {
				continue
			}
			for _, target := range []string{to.RaftAddr, to.RPCAddr, to.AgentAddr} {
				p, err := add(from.ID, to.ID, target)
				if err != nil {
					return nil, err
				}
				dm[target] = p
			}
		}
		cloud, err := add(from.ID, EndpointCloud, cloudAddr)
		if err != nil {
			return nil, err
		}
		fault := filepath.Join(faultDir, from.ID+".disk")
		if err := os.WriteFile(fault, nil, 0o644); err != nil {
			return nil, err
		}
		w.diskFault[from.ID] = fault
		env[from.ID] = []string{
			"SHOAL_DIAL_MAP=" + dialMap(dm),
			"SHOAL_REDIRECT_MAP=" + dialMap(redirect),
			"AWS_ENDPOINT_URL=http://" + cloud,
			"SHOAL_DISK_FAULT_FILE=" + fault,
			// The local cloud accepts any key; the node's id makes the
			// audit log's caller name the node.
			"AWS_ACCESS_KEY_ID=" + from.ID,
		}
	}
	return env, nil
}

// setDisk writes a node's disk fault file: "" (healthy), "full" or
// "corrupt-read".
func (w *wiring) setDisk(node, mode string) error {
	f, ok := w.diskFault[node]
	if !ok {
		return fmt.Errorf("disk fault: unknown node %s", node)
	}
	// Write then rename, so the node never reads half a word.
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, []byte(mode), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f)
}

package chaos

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Net is the set of directed links between named endpoints ("n1", "n2",
// "agents", "lb", "operator", "cloud"). Each link from→to holds the
// proxies that carry connections from dials to to's addresses.
//
// Faults are described by byte flows: Drop(a, b) means bytes sent by a never
// reach b, whichever side dialed. Net turns that into proxy states: on the
// link a→b the Forward direction drops, on b→a the Reverse one. So a one-way
// partition is exactly one Drop, and a full one is a Drop each way.
type Net struct {
	mu      sync.Mutex
	links   map[[2]string][]*Proxy
	dropped map[[2]string]bool
	latency map[[2]string]time.Duration
}

// NewNet returns an empty network.
func NewNet() *Net {
	return &Net{links: map[[2]string][]*Proxy{}, dropped: map[[2]string]bool{}, latency: map[[2]string]time.Duration{}}
}

// Add starts a proxy on the link from→to for target and returns the
// address from must dial instead of target. The proxy never listens on an
// address in avoid: the sandbox chooses its processes' ports (bind, then
// release) before they start, and a proxy opened meanwhile could be handed
// one of them by the kernel.
func (n *Net) Add(from, to, target string, avoid ...string) (string, error) {
	if from == to {
		return "", fmt.Errorf("link %s→%s: a link joins two different endpoints", from, to)
	}
	var held []*Proxy
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	var p *Proxy
	for p == nil {
		q, err := NewProxy(from+"→"+to, target)
		if err != nil {
			return "", err
		}
		if slices.Contains(avoid, q.Addr()) {
			held = append(held, q) // keep it bound so the next try differs
			continue
		}
		p = q
	}
	n.mu.Lock()
	k := [2]string{from, to}
	n.links[k] = append(n.links[k], p)
	st := n.stateLocked(from, to)
	n.mu.Unlock()
	p.Set(st)
	return p.Addr(), nil
}

// Proxies returns the proxies on the link from→to.
func (n *Net) Proxies(from, to string) []*Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Proxy(nil), n.links[[2]string{from, to}]...)
}

// Endpoints returns every endpoint name that has a link, sorted.
func (n *Net) Endpoints() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]bool{}
	for k := range n.links {
		seen[k[0]], seen[k[1]] = true, true
	}
	var out []string
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

func (n *Net) stateLocked(from, to string) LinkState {
	return LinkState{
		DropForward: n.dropped[[2]string{from, to}],
		DropReverse: n.dropped[[2]string{to, from}],
		Latency:     n.latency[[2]string{from, to}] + n.latency[[2]string{to, from}],
	}
}

// apply pushes the flow table to every proxy (cutting connections of links
// that now drop more).
func (n *Net) apply() {
	n.mu.Lock()
	type set struct {
		p  *Proxy
		st LinkState
	}
	var sets []set
	for k, ps := range n.links {
		st := n.stateLocked(k[0], k[1])
		for _, p := range ps {
			sets = append(sets, set{p, st})
		}
	}
	n.mu.Unlock()
	for _, s := range sets {
		s.p.Set(s.st)
	}
}

// Drop makes bytes from a to b vanish (b no longer hears a).
func (n *Net) Drop(a, b string) {
	n.mu.Lock()
	n.dropped[[2]string{a, b}] = true
	n.mu.Unlock()
	n.apply()
}

// OneWay is Drop: "from" still hears "to", "to" no longer hears "from".
func (n *Net) OneWay(from, to string) { n.Drop(from, to) }

// Partition splits the named endpoints into groups that cannot hear one
// another in either direction; endpoints in no group keep their links.
func (n *Net) Partition(groups ...[]string) error {
	group := map[string]int{}
	for i, g := range groups {
		for _, e := range g {
			if _, dup := group[e]; dup {
				return fmt.Errorf("partition: %s is in two groups", e)
			}
			group[e] = i
		}
	}
	n.mu.Lock()
	for a, ga := range group {
		for b, gb := range group {
			if ga != gb {
				n.dropped[[2]string{a, b}] = true
			}
		}
	}
	n.mu.Unlock()
	n.apply()
	return nil
}

// Isolate cuts e off from every other endpoint, both ways.
func (n *Net) Isolate(e string) {
	n.mu.Lock()
	for k := range n.links {
		if k[0] == e || k[1] == e {
			n.dropped[k] = true
			n.dropped[[2]string{k[1], k[0]}] = true
		}
	}
	n.mu.Unlock()
	n.apply()
}

// SetLatency adds d to every chunk between a and b (both ways); 0 removes it.
func (n *Net) SetLatency(a, b string, d time.Duration) {
	n.mu.Lock()
	if d == 0 {
		delete(n.latency, [2]string{a, b})
	} else {
		n.latency[[2]string{a, b}] = d
	}
	n.mu.Unlock()
	n.apply()
}

// Heal lets every byte through again and removes every latency.
func (n *Net) Heal() {
	n.mu.Lock()
	n.dropped = map[[2]string]bool{}
	n.latency = map[[2]string]time.Duration{}
	n.mu.Unlock()
	n.apply()
}

// Disconnect closes every open connection on the link from→to, without
// blocking new ones: the client must notice and reconnect. It returns how
// many connections it closed.
func (n *Net) Disconnect(from, to string) int {
	cut := 0
	for _, p := range n.Proxies(from, to) {
		cut += p.Cut()
	}
	return cut
}

// Accepted returns, per link ("from→to"), how many connections its
// proxies accepted.
func (n *Net) Accepted() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for k, ps := range n.links {
		for _, p := range ps {
			a, _ := p.Counts()
			out[k[0]+"→"+k[1]] += a
		}
	}
	return out
}

// Close stops every proxy.
func (n *Net) Close() error {
	n.mu.Lock()
	var all []*Proxy
	for _, ps := range n.links {
		all = append(all, ps...)
	}
	n.links = map[[2]string][]*Proxy{}
	n.mu.Unlock()
	var errs []error
	for _, p := range all {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

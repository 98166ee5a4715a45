//go:build multiprocess

// Package spot holds the whole-system test of capacity that disappears: a
// Spot interruption injected into the local cloud is drained through the LB
// with no failed request, replaced exactly once and terminated by the
// leader before EC2's deadline; with Capacity Rebalancing the group's own
// replacement is the only one; a failed launch shows in `decisions` with
// its EC2 error code and class.
package spot

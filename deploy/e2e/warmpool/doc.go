//go:build multiprocess

// Package warmpool holds the whole-system test of warm pools: the leader
// sees the group's pool, tells a launch from the pool from a cold one, and
// shows both learned launch delays in explain and fleet get.
package warmpool

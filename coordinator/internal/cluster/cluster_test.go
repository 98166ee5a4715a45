package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.RaftBind, c.RPCAdvertise = "n1", "/tmp/x", "127.0.0.1:7300", "127.0.0.1:7400"
		c.RaftAdvertise = c.RaftBind
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.NodeID = "" }, "node-id: required"},
		{"unspecified raft advertise", func(c *Config) { c.RaftBind, c.RaftAdvertise = "0.0.0.0:7300", "0.0.0.0:7300" }, "advertise-raft"},
		{"unspecified rpc advertise", func(c *Config) { c.RPCAdvertise = "0.0.0.0:7400" }, "advertise-rpc"},
		{"both bootstrap and join", func(c *Config) { c.Bootstrap, c.Join = true, []string{"127.0.0.1:7401"} }, "give one, not both"},
		{"bad join", func(c *Config) { c.Join = []string{"nohost"} }, `join[0] ("nohost")`},
		{"bad store", func(c *Config) { c.LogStore = "sqlite" }, `log-store ("sqlite")`},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second }, "raft-leader-lease-timeout (2s) must be <= raft-heartbeat-timeout (1s)"},
		{"no raft advertise", func(c *Config) { c.RaftAdvertise = "" }, `advertise-raft ("")`},
		{"no snapshot interval", func(c *Config) { c.SnapshotInterval = 0 }, "raft-snapshot-interval (0s) must be > 0"},
		{"no trailing logs", func(c *Config) { c.TrailingLogs = 0 }, "raft-trailing-logs: must be > 0"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

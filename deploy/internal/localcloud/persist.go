package localcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// snapshot is what --state-file keeps. Instances are processes and die with
// the local cloud, so they are not kept: groups relaunch to desired on start.
type snapshot struct {
	Images    []*Image          `json:"images"`
	Templates []*LaunchTemplate `json:"launchTemplates"`
	Groups    []*Group          `json:"groups"`
	Alarms    []*cwstore.Alarm  `json:"alarms"`
	Policies  []*Policy         `json:"policies,omitempty"`
}

func (c *Cloud) saveLocked() error {
	var s snapshot
	for _, im := range c.images {
		if im.ID != BaseImageID {
			s.Images = append(s.Images, im)
		}
	}
	for _, t := range c.templates {
		s.Templates = append(s.Templates, t)
	}
	for _, g := range c.groups {
		if !g.Deleting {
			s.Groups = append(s.Groups, g)
		}
	}
	s.Alarms = c.alarms.Sorted()
	for _, p := range c.policies {
		s.Policies = append(s.Policies, p)
	}
	sort.Slice(s.Policies, func(i, j int) bool { return s.Policies[i].ARN < s.Policies[j].ARN })
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.cfg.StateFile); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

func (c *Cloud) load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err != nil {
		return fmt.Errorf("%w: state-file %q: %v", ErrConfig, path, err)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: state-file %q is not a local cloud state: %v", ErrConfig, path, err)
	}
	for _, im := range s.Images {
		c.images[im.ID] = im
		// A registered image's snapshot; one left by DeregisterImage is not
		// kept across a restart of the local cloud.
		if im.SnapshotID != "" {
			c.snapshots[im.SnapshotID] = true
		}
	}
	for _, t := range s.Templates {
		c.templates[t.ID] = t
	}
	for _, g := range s.Groups {
		if g.Suspended == nil {
			g.Suspended = map[string]string{}
		}
		if g.Hooks == nil {
			g.Hooks = map[string]*Hook{}
		}
		c.groups[g.Name] = g
	}
	for _, a := range s.Alarms {
		c.alarms[a.Name] = a
	}
	for _, p := range s.Policies {
		p.lastInvoked = map[string]time.Time{}
		c.policies[p.ARN] = p
	}
	return nil
}

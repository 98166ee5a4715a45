package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// FleetTag names the fleet on everything fleet bootstrap makes (image,
// launch template, group); purge deletes only what carries it.
const FleetTag = "shoal:fleet"

// PurgeSpec is one `fleet delete --purge`: what bootstrap made for a fleet.
type PurgeSpec struct {
	Fleet string
	// ASG is the fleet's group; Template its launch template (default: the
	// one the group uses, else the group's name).
	ASG      string
	Template string
	// GroupTimeout bounds the wait for a force-deleted group to be gone
	// (its instances terminate first); Poll is the time between looks.
	GroupTimeout time.Duration
	Poll         time.Duration
}

// Validate names the flag that is wrong.
func (s PurgeSpec) Validate() error {
	switch {
	case s.Fleet == "":
		return errors.New("NAME: required")
	case s.ASG == "":
		return errors.New("--asg: required when the fleet is already gone")
	}
	return s.ValidateTimeout()
}

// ValidateTimeout checks what the flags alone decide, so `fleet delete
// --purge` can refuse a bad one before it deletes the fleet.
func (s PurgeSpec) ValidateTimeout() error {
	if s.GroupTimeout <= 0 || s.Poll <= 0 || s.Poll > s.GroupTimeout {
		return fmt.Errorf("--purge-timeout (%v): must be > 0 and at least the poll interval (%v)", s.GroupTimeout, s.Poll)
	}
	return nil
}

// Purge deletes, in order, the fleet's group (force: its instances
// terminate), its launch template once the group is gone, and every image
// bootstrap baked for the fleet (tag shoal:fleet) with the EBS snapshots
// behind it, which DeregisterImage alone leaves (and bills). What is already
// gone is skipped, so a purge cut short is simply run again. The fleet's
// CloudWatch alarms are the leader's: it deletes them once the fleet is gone.
func Purge(ctx context.Context, cl cloud.Teardown, s PurgeSpec, out io.Writer) ([]Item, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var items []Item
	note := func(kind, id, what string) {
		items = append(items, Item{Kind: kind, ID: id, Note: what})
		fmt.Fprintf(out, "%-20s %-24s %s\n", kind, id, what)
	}
	template := s.Template
	gs, err := ownGroup(ctx, cl, s)
	if err != nil {
		return items, err
	}
	if len(gs) == 1 {
		if template == "" && gs[0].LaunchTemplate != nil {
			template = gs[0].LaunchTemplate.Name
		}
		if gs[0].Status == "" { // not already being deleted
			if err := cl.DeleteGroup(ctx, s.ASG); err != nil {
				return items, err
			}
		}
		if err := waitGroupGone(ctx, cl, s); err != nil {
			return items, err
		}
		note("auto-scaling-group", s.ASG, "deleted")
	}
	if template == "" {
		template = s.ASG
	}
	lts, err := cl.DescribeLaunchTemplates(ctx, []string{template})
	switch {
	case errors.Is(err, cloud.ErrNotFound):
		// EC2 answers an unknown name with an error, not an empty list.
	case err != nil:
		return items, err
	case len(lts) > 0:
		if err := cl.DeleteLaunchTemplate(ctx, template); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return items, err
		}
		note("launch-template", template, "deleted")
	}
	imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{Tags: map[string]string{FleetTag: s.Fleet}})
	if err != nil {
		return items, err
	}
	for _, im := range imgs {
		if err := cl.DeregisterImage(ctx, im.ID); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return items, err
		}
		note("image", im.ID, "deregistered")
		for _, snap := range im.SnapshotIDs {
			if err := cl.DeleteSnapshot(ctx, snap); err != nil && !errors.Is(err, cloud.ErrNotFound) {
				return items, err
			}
			note("snapshot", snap, "deleted")
		}
	}
	return items, nil
}

// CheckGroup refuses, before anything is deleted, a purge of a group that
// exists and is not this fleet's; a group already gone passes.
func CheckGroup(ctx context.Context, cl cloud.Teardown, s PurgeSpec) error {
	_, err := ownGroup(ctx, cl, s)
	return err
}

// ownGroup describes s.ASG: none when it is gone, else the group, which
// must carry FleetTag=s.Fleet. Only a group fleet bootstrap made for this
// fleet goes: a group another fleet's bootstrap made, or one Terraform or
// a person made (which --asg could name), is never force-deleted, nor is
// the launch template it uses.
func ownGroup(ctx context.Context, cl cloud.Teardown, s PurgeSpec) ([]cloud.Group, error) {
	gs, err := cl.DescribeGroups(ctx, []string{s.ASG})
	if err != nil {
		return nil, err
	}
	if len(gs) == 1 {
		if f := gs[0].Tags[FleetTag]; f != s.Fleet {
			return nil, fmt.Errorf("%w: --asg: group %s is tagged %s=%q, not %q: fleet bootstrap did not make it for this fleet; not deleting it", ErrInvalid, s.ASG, FleetTag, f, s.Fleet)
		}
	}
	return gs, nil
}

func waitGroupGone(ctx context.Context, cl cloud.Teardown, s PurgeSpec) error {
	ctx, cancel := context.WithTimeout(ctx, s.GroupTimeout)
	defer cancel()
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	for {
		gs, err := cl.DescribeGroups(ctx, []string{s.ASG})
		if err != nil {
			return err
		}
		if len(gs) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s: still there after --purge-timeout %v (%d instances terminating); run the purge again", s.ASG, s.GroupTimeout, len(gs[0].Instances))
		case <-t.C:
		}
	}
}

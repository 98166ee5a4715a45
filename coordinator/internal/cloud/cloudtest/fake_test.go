package cloudtest

import (
	"context"
	"errors"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

func TestFakeUnsetFieldFailsAndRecords(t *testing.T) {
	f := &Fake{}
	err := f.SetDesiredCapacity(context.Background(), "web", 3)
	if !errors.Is(err, ErrUnexpectedCall) {
		t.Fatalf("err = %v, want ErrUnexpectedCall", err)
	}
	calls := f.CallsTo("SetDesiredCapacity")
	if len(calls) != 1 || calls[0].Args[0] != "web" || calls[0].Args[1] != int32(3) {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestGroupsModel(t *testing.T) {
	ctx := context.Background()
	m := NewGroups(cloud.Group{Name: "web", Min: 1, Max: 5, Desired: 2})
	f := &Fake{}
	m.Install(f)

	tests := []struct {
		name        string
		do          func() error
		wantDesired int32
		wantN       int
		wantKind    error
	}{
		{"scale out", func() error { return f.SetDesiredCapacity(ctx, "web", 4) }, 4, 4, nil},
		{"above max refused", func() error { return f.SetDesiredCapacity(ctx, "web", 6) }, 4, 4, cloud.ErrValidation},
		{"unknown group", func() error { return f.SetDesiredCapacity(ctx, "nope", 1) }, 4, 4, cloud.ErrGroupNotFound},
		{"terminate with decrement", func() error {
			g, _ := m.Group("web")
			_, err := f.TerminateInstance(ctx, g.Instances[0].ID, true)
			return err
		}, 3, 3, nil},
		{"terminate without decrement is replaced", func() error {
			g, _ := m.Group("web")
			_, err := f.TerminateInstance(ctx, g.Instances[0].ID, false)
			return err
		}, 3, 3, nil},
		{"unknown instance", func() error { _, err := f.TerminateInstance(ctx, "i-nope", true); return err }, 3, 3, cloud.ErrInstanceNotFound},
		{"protected instances survive scale-in", func() error {
			g, _ := m.Group("web")
			if err := f.SetInstanceProtection(ctx, "web", []string{g.Instances[0].ID, g.Instances[1].ID, g.Instances[2].ID}, true); err != nil {
				return err
			}
			return f.SetDesiredCapacity(ctx, "web", 1)
		}, 1, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.wantKind == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			gs, _ := f.DescribeGroups(ctx, []string{"web", "missing"})
			if len(gs) != 1 {
				t.Fatalf("DescribeGroups returned %d groups, want 1", len(gs))
			}
			if gs[0].Desired != tt.wantDesired || len(gs[0].Instances) != tt.wantN {
				t.Fatalf("desired %d with %d instances, want %d with %d", gs[0].Desired, len(gs[0].Instances), tt.wantDesired, tt.wantN)
			}
		})
	}
	acts, err := f.DescribeScalingActivities(ctx, "web", 2)
	if err != nil || len(acts) != 2 {
		t.Fatalf("activities = %v, %v", acts, err)
	}
}

func TestGroupsBalancesAZs(t *testing.T) {
	m := NewGroups(cloud.Group{Name: "web", Max: 10, Desired: 4, AvailabilityZones: []string{"a", "b"}})
	g, _ := m.Group("web")
	per := map[string]int{}
	for _, i := range g.Instances {
		per[i.AZ]++
	}
	if per["a"] != 2 || per["b"] != 2 {
		t.Fatalf("per-AZ = %v, want 2 and 2", per)
	}
}

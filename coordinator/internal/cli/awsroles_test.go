package cli

import (
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/bootstrap"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
)

// methodOps returns the operations of an interface type's methods.
func methodOps(t *testing.T, typ reflect.Type) []string {
	t.Helper()
	var out []string
	for i := range typ.NumMethod() {
		op, ok := awscloud.MethodOperations[typ.Method(i).Name]
		if !ok {
			t.Fatalf("%s.%s has no entry in aws.MethodOperations", typ, typ.Method(i).Name)
		}
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// TestRoleOperations ties each role's list to the interfaces the code calls
// AWS through, so a method added to bootstrap.Cloud or to the scaler's cloud
// cannot go unlisted (and then ungranted).
func TestRoleOperations(t *testing.T) {
	want := slices.Compact(slices.Sorted(slices.Values(append(methodOps(t, reflect.TypeFor[bootstrap.Cloud]()), methodOps(t, reflect.TypeFor[cloud.Teardown]())...))))
	if got := BootstrapAWSOperations(); !slices.Equal(got, want) {
		t.Errorf("BootstrapAWSOperations() = %v; bootstrap.Cloud's and cloud.Teardown's methods call %v", got, want)
	}
	field, ok := reflect.TypeFor[scaler.Deps]().FieldByName("Cloud")
	if !ok {
		t.Fatal("scaler.Deps has no Cloud field")
	}
	serve := ServeAWSOperations()
	for _, op := range append(methodOps(t, field.Type), publish.Operations()...) {
		if !slices.Contains(serve, op) {
			t.Errorf("serve calls %s (scaler or publisher), but ServeAWSOperations() does not list it", op)
		}
	}
	for _, op := range []string{opDescribeAutoScalingInstances, opGetCallerIdentity} {
		if !slices.Contains(serve, op) {
			t.Errorf("enrollment calls %s, but ServeAWSOperations() does not list it", op)
		}
	}
	if !slices.IsSorted(serve) || len(slices.Compact(slices.Clone(serve))) != len(serve) {
		t.Errorf("ServeAWSOperations() = %v, want sorted without repeats", serve)
	}
}

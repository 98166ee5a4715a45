package check

import (
	"slices"
	"testing"
)

func TestCloudOperationsReadsTheList(t *testing.T) {
	tests := []struct {
		name    string
		fn      string
		want    []string
		wantErr bool
	}{
		{name: "constants, literals and helper calls", fn: "Operations", want: []string{"autoscaling:SetDesiredCapacity", "cloudwatch:PutMetricData", "ec2:CreateImage"}},
		{name: "missing function", fn: "Nope", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CloudOperations("testdata/opsfixture", tc.fn)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v (unused constants must not count)", got, tc.want)
			}
		})
	}
}

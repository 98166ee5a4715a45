package check

import (
	"os"
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
		{name: "another package of the module", fn: "WithOther", want: []string{"ssm:GetParameter", "sts:GetCallerIdentity"}},
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

func TestScriptOperations(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/s"
	src := "#!/bin/sh\n# aws ec2 run-instances in a comment does not count\n" +
		"aws ssm get-parameter --with-decryption --name x >y\n" +
		"aws sts get-caller-identity\n"
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ScriptOperations(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kms:Decrypt", "ssm:GetParameter", "sts:GetCallerIdentity"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ScriptOperations(p); err == nil {
		t.Fatal("a script with no AWS call gave no error")
	}
}

package simulate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadTrace(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Trace
		wantErr string
	}{
		{name: "ok", in: "time,demand\n0,10\n5,20.5\n6,0\n", want: Trace{{0, 10}, {5, 20.5}, {6, 0}}},
		{name: "spaces and comments", in: "# made by hand\ntime, demand\n0, 1\n", want: Trace{{0, 1}}},
		{name: "bad header", in: "t,d\n0,1\n", wantErr: `line 1: header must be "time,demand"`},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "no rows", in: "time,demand\n", wantErr: "no rows"},
		{name: "time not a number", in: "time,demand\n0,1\nabc,2\n", wantErr: `line 3: time: not a number: "abc"`},
		{name: "demand not a number", in: "time,demand\n0,1\n1,x\n", wantErr: `line 3: demand: not a number: "x"`},
		{name: "negative demand", in: "time,demand\n0,1\n1,2\n2,-1\n", wantErr: "line 4: demand: must be >= 0 (got -1)"},
		{name: "negative time", in: "time,demand\n-1,1\n", wantErr: "line 2: time: must be >= 0"},
		{name: "time goes back", in: "time,demand\n0,1\n5,1\n5,2\n", wantErr: "line 4: time: must increase"},
		{name: "three fields", in: "time,demand\n0,1,2\n", wantErr: "line 2: want 2 fields (time,demand), got 3"},
		{name: "infinite demand", in: "time,demand\n0,Inf\n", wantErr: "line 2: demand: not a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadTrace(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrBadTrace) {
					t.Fatalf("err = %v, want ErrBadTrace containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestTraceSeconds(t *testing.T) {
	got := Trace{{2, 10}, {4, 20}, {5, 30}}.Seconds()
	want := []float64{10, 10, 20, 30}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Seconds = %v, want %v", got, want)
	}
}

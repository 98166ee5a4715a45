package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// After installing a snapshot at 61, raft compacts a follower's log only
// down to its trailing entries (15-18 here) and appends from 62: a gap below
// the snapshot is normal and must not stop the node (it did, with BoltDB:
// "index 19 is missing between 15 and 63"). A gap above it is damage.
func TestVerifyLogAllowsAGapBelowTheSnapshot(t *testing.T) {
	s := raft.NewInmemStore()
	var logs []*raft.Log
	for _, i := range []uint64{15, 16, 17, 18, 62, 63} {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: []byte("x")})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		snapIndex uint64
		wantErr   bool
	}{
		{"gap below the newest snapshot", 61, false},
		{"no snapshot", 0, true},
		{"snapshot below the gap's end", 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyLog(s, tc.snapIndex)
			if tc.wantErr != (err != nil) {
				t.Fatalf("verifyLog(snapshot %d) = %v, want error %v", tc.snapIndex, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
		})
	}
}

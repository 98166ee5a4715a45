package nemesis

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// fakeVFS is a VFS that does nothing; it only has an identity.
type fakeVFS struct{ types.VFS }

// testClock is a settable clock for the control file's recheck interval.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// setDisk writes the control file and moves the clock past the recheck.
func setDisk(t *testing.T, clk *testClock, control, state string) {
	t.Helper()
	if err := os.WriteFile(control, []byte(state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.add(diskRecheck)
}

func TestDiskFaultFullAndCorruptRead(t *testing.T) {
	dir := t.TempDir()
	control := filepath.Join(t.TempDir(), "disk")
	clk := &testClock{t: time.Unix(1_800_000_000, 0)}
	vfs := newDiskVFS(walfs.New(), control, clk.now)

	// A missing control file is a healthy disk.
	f, err := vfs.Create(dir, "seg", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := []byte("0123456789abcdef")
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}

	setDisk(t, clk, control, DiskFull)
	if _, err := f.WriteAt(data, 16); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ENOSPC", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("sync on a full disk: %v, want ENOSPC", err)
	}
	if _, err := vfs.Create(dir, "seg2", 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("create on a full disk: %v, want ENOSPC", err)
	}
	// Reads still work on a full disk.
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read on a full disk: %q, %v", got, err)
	}

	setDisk(t, clk, control, DiskCorruptRead)
	r, err := vfs.OpenReader(dir, "seg")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, rd := range map[string]interface {
		ReadAt([]byte, int64) (int, error)
	}{"reader": r, "writer": f} {
		got := make([]byte, len(data))
		if _, err := rd.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range data {
			if got[i] != data[i] {
				diff++
			}
		}
		if diff != 1 {
			t.Fatalf("%s read %q of %q: %d bytes differ, want exactly 1", name, got, data, diff)
		}
	}
	if _, err := f.WriteAt(data, 16); err != nil {
		t.Fatalf("write with only reads corrupt: %v", err)
	}

	// The state is re-read at most every diskRecheck, then cleared.
	if err := os.WriteFile(control, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clk.add(diskRecheck / 2)
	if vfs.current() != DiskCorruptRead {
		t.Fatal("the control file was re-read before the recheck interval")
	}
	clk.add(diskRecheck / 2)
	got = make([]byte, len(data))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after clearing: %q, %v", got, err)
	}
}

func TestDiskFaultReachesRaftWAL(t *testing.T) {
	dir := t.TempDir()
	control := filepath.Join(t.TempDir(), "disk")
	clk := &testClock{t: time.Unix(1_800_000_000, 0)}
	w, err := raftwal.Open(dir, raftwal.WithSegmentFiler(segment.NewFiler(dir, newDiskVFS(walfs.New(), control, clk.now))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	setDisk(t, clk, control, DiskFull)
	if err := w.StoreLogs([]*raft.Log{{Index: 2, Term: 1, Data: []byte("b")}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("raft-wal append on a full disk: %v, want ENOSPC", err)
	}
}

package nemesis

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft-wal/types"
)

// Disk fault states, as the control file spells them.
const (
	DiskHealthy     = ""
	DiskFull        = "full"
	DiskCorruptRead = "corrupt-read"
)

// diskRecheck is how stale the control file's state may be: reading it on
// every write would double raft-wal's system calls.
const diskRecheck = 100 * time.Millisecond

// DiskVFS returns vfs, which raft-wal's segment filer opens its files
// through, with the disk fault of SHOAL_DISK_FAULT_FILE applied: while the
// control file says "full" every create, write and sync fails with ENOSPC;
// while it says "corrupt-read" every read comes back with one byte flipped.
// A missing or empty file, or anything else in it, is a healthy disk.
// Without the variable (and in every build without failpoints) it returns
// vfs itself.
func DiskVFS(vfs types.VFS) types.VFS {
	f := armed().diskFile
	if f == "" {
		return vfs
	}
	return newDiskVFS(vfs, f, time.Now)
}

func newDiskVFS(vfs types.VFS, control string, now func() time.Time) *diskVFS {
	return &diskVFS{VFS: vfs, control: control, now: now}
}

type diskVFS struct {
	types.VFS
	control string
	now     func() time.Time

	mu      sync.Mutex
	state   string
	checked time.Time
}

// current is the control file's state, read at most every diskRecheck.
func (d *diskVFS) current() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := d.now(); d.checked.IsZero() || now.Sub(d.checked) >= diskRecheck {
		d.checked = now
		b, err := os.ReadFile(d.control)
		d.state = DiskHealthy
		if err == nil {
			d.state = strings.TrimSpace(string(b))
		}
	}
	return d.state
}

func (d *diskVFS) full() bool { return d.current() == DiskFull }

func enospc(op, path string) error { return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC} }

func (d *diskVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	path := filepath.Join(dir, name)
	if d.full() {
		return nil, enospc("create", path)
	}
	f, err := d.VFS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return &faultyFile{WritableFile: f, d: d, path: path}, nil
}

func (d *diskVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := d.VFS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{WritableFile: f, d: d, path: filepath.Join(dir, name)}, nil
}

func (d *diskVFS) OpenReader(dir, name string) (types.ReadableFile, error) {
	f, err := d.VFS.OpenReader(dir, name)
	if err != nil {
		return nil, err
	}
	return &faultyReader{ReadableFile: f, d: d}, nil
}

// flip damages one byte of a read, in its middle.
func flip(b []byte, n int) {
	if n > 0 {
		b[n/2] ^= 0x5a
	}
}

type faultyFile struct {
	types.WritableFile
	d    *diskVFS
	path string
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if f.d.full() {
		return 0, enospc("write", f.path)
	}
	return f.WritableFile.WriteAt(p, off)
}

func (f *faultyFile) Sync() error {
	if f.d.full() {
		return enospc("sync", f.path)
	}
	return f.WritableFile.Sync()
}

func (f *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.WritableFile.ReadAt(p, off)
	if f.d.current() == DiskCorruptRead {
		flip(p, n)
	}
	return n, err
}

type faultyReader struct {
	types.ReadableFile
	d *diskVFS
}

func (f *faultyReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.ReadableFile.ReadAt(p, off)
	if f.d.current() == DiskCorruptRead {
		flip(p, n)
	}
	return n, err
}

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

const waitLimit = 10 * time.Second

// testConfig is a one-node cluster on real files in dir, with raft-wal
// sealing a segment every few entries.
func testConfig(dir string, vfs types.VFS) Config {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.DataDir = dir
	_, c.Transport = raft.NewInmemTransport("n1")
	c.RPCAdvertise = "127.0.0.1:1"
	c.Bootstrap = true
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 2 * time.Second
	c.ShutdownTimeout = 2 * time.Second
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c.walVFS = vfs
	c.walSegmentSize = 2048
	return c
}

func waitApplied(t *testing.T, n *Node, index uint64) error {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for n.FSM().LastApplied() < index {
		select {
		case err := <-n.Fatal():
			return err
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %d, want %d within %s", n.FSM().LastApplied(), index, waitLimit)
		}
	}
	return nil
}

func createFleet(name string) []byte {
	return fsm.CreateFleet(&shoalv1.Fleet{Name: name, Asg: name + "-asg", Min: 1, Max: 3}).Encode()
}

type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "buf" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

func fsmState(t *testing.T, f *fsm.FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bufSink
	if err := s.Persist(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// populate writes fleets f00..f39, deletes every fifth and returns the
// state and the last index.
func populate(t *testing.T, dir string) ([]byte, uint64) {
	t.Helper()
	n, err := New(testConfig(dir, nil), fsm.New())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var last uint64
	for i := range 40 {
		r, idx, err := n.Apply(ctx, createFleet(fmt.Sprintf("f%02d", i)))
		if err != nil || r.Error() != nil {
			t.Fatalf("create f%02d: %v %v", i, err, r.Error())
		}
		last = idx
		if i%5 == 0 {
			if r, last, err = n.Apply(ctx, fsm.DeleteFleet(fmt.Sprintf("f%02d", i)).Encode()); err != nil || r.Error() != nil {
				t.Fatalf("delete f%02d: %v %v", i, err, r.Error())
			}
		}
	}
	if err := waitApplied(t, n, last); err != nil {
		t.Fatal(err)
	}
	state := fsmState(t, n.FSM())
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	return state, last
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// sealedSegments lists the segment files but the tail (the highest base
// index), which raft-wal still appends to.
func sealedSegments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	if len(m) < 3 {
		t.Fatalf("want at least two sealed segments, have %d files", len(m))
	}
	return m[:len(m)-1]
}

// outcome restarts a node on dir and says whether it stopped, naming want,
// or came back with exactly the state it had.
func outcome(t *testing.T, dir string, state []byte, last uint64, want string) (stopped bool) {
	t.Helper()
	n, err := New(testConfig(dir, nil), fsm.New())
	if err != nil {
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Fatalf("start failed without naming %s as corrupt: %v", want, err)
		}
		t.Log(err)
		return true
	}
	defer n.Shutdown()
	if err := waitApplied(t, n, last); err != nil {
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Fatalf("stopped without naming %s as corrupt: %v", want, err)
		}
		return true
	}
	if got := fsmState(t, n.FSM()); !bytes.Equal(got, state) {
		t.Fatalf("state diverged silently:\n got %s\nwant %s", got, state)
	}
	select {
	case err := <-n.Fatal():
		t.Fatalf("fatal after an identical replay: %v", err)
	default:
	}
	return false
}

func TestFlippedByteInSealedSegmentStopsTheNode(t *testing.T) {
	pristine := t.TempDir()
	state, last := populate(t, pristine)
	segs := sealedSegments(t, pristine)
	rng := rand.New(rand.NewPCG(15, 20))
	stopped, identical := 0, 0
	// The first segment holds the bootstrap configuration entry; the second
	// only commands.
	for i := range 20 {
		seg := segs[i%2]
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		off := rng.Int64N(fi.Size())
		mask := byte(1 + rng.IntN(255))
		t.Run(fmt.Sprintf("%s@%d^%02x", filepath.Base(seg), off, mask), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, pristine, dir)
			flip(t, filepath.Join(dir, "wal", filepath.Base(seg)), off, mask)
			if outcome(t, dir, state, last, filepath.Base(seg)) {
				stopped++
			} else {
				identical++
				t.Logf("offset %d of %d: state identical", off, fi.Size())
			}
		})
	}
	t.Logf("20 flips: %d stopped the node naming the segment, %d left the state identical", stopped, identical)
	if stopped == 0 {
		t.Fatal("no flip was detected")
	}
}

// TestShortenedTailStopsTheNode damages the segment raft-wal still appends
// to. raft-wal rebuilds that one by reading until the frames stop making
// sense, so a cut or a flip in its last batch shortens the log instead of
// failing; the node must notice the entries it lost.
func TestShortenedTailStopsTheNode(t *testing.T) {
	pristine := t.TempDir()
	state, last := populate(t, pristine)
	all, err := filepath.Glob(filepath.Join(pristine, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(all)
	tail := filepath.Base(all[len(all)-1])
	fi, err := os.Stat(all[len(all)-1])
	if err != nil {
		t.Fatal(err)
	}
	stopped, identical := 0, 0
	count := func(stop bool) {
		if stop {
			stopped++
		} else {
			identical++
		}
	}
	for k := int64(1); k <= 5; k++ {
		size := fi.Size() * k / 6
		t.Run(fmt.Sprintf("cut at %d of %d", size, fi.Size()), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, pristine, dir)
			if err := os.Truncate(filepath.Join(dir, "wal", tail), size); err != nil {
				t.Fatal(err)
			}
			count(outcome(t, dir, state, last, "raft storage corrupt"))
		})
	}
	rng := rand.New(rand.NewPCG(15, 7))
	for range 10 {
		off, mask := rng.Int64N(fi.Size()), byte(1+rng.IntN(255))
		t.Run(fmt.Sprintf("flip at %d^%02x", off, mask), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, pristine, dir)
			flip(t, filepath.Join(dir, "wal", tail), off, mask)
			count(outcome(t, dir, state, last, "raft storage corrupt"))
		})
	}
	t.Logf("15 cuts and flips in the tail segment: %d stopped the node, %d left the state identical", stopped, identical)
	if stopped == 0 {
		t.Fatal("no damage to the tail was detected")
	}
}

// TestCorruptReadWhileRunningIsFatal damages a sealed segment under a
// store that is open, as bit rot would, and reads the entry as raft does
// when it replicates or applies it.
func TestCorruptReadWhileRunningIsFatal(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	n := &Node{cfg: testConfig(dir, nil), fatal: make(chan error, 1)}
	n.log = n.cfg.Logger
	s, _, err := n.openLogStore(NewHCLog(n.log, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer n.closeAll()
	// Batching decides which segment holds which fleet; take the first
	// fleet found in a sealed one.
	seg, off := "", -1
	for _, p := range sealedSegments(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 40 && off < 0; i++ {
			if off = bytes.Index(b, []byte(fmt.Sprintf("f%02d-asg", i))); off >= 0 {
				seg = p
			}
		}
		if off >= 0 {
			break
		}
	}
	if off < 0 {
		t.Fatal("no fleet's entry in a sealed segment")
	}
	flip(t, seg, int64(off), 0x01) // fNN-asg -> gNN-asg
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	var l raft.Log
	var readErr error
	for i := first; i <= last && readErr == nil; i++ {
		readErr = s.GetLog(i, &l)
	}
	if !errors.Is(readErr, ErrCorrupt) || !strings.Contains(readErr.Error(), filepath.Base(seg)) {
		t.Fatalf("read = %v, want a corruption error naming %s", readErr, filepath.Base(seg))
	}
	select {
	case err := <-n.Fatal():
		if err.Error() != readErr.Error() {
			t.Fatalf("fatal = %v, want %v", err, readErr)
		}
	default:
		t.Fatal("a corrupt read was not reported as fatal")
	}
}

func TestEntryWithoutEnvelopeIsRefused(t *testing.T) {
	l := &raft.Log{Index: 7, Term: 2, Type: raft.LogCommand, Data: []byte(`{"op":"x"}`)}
	sealed, err := seal(l)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.Data, []byte(`{"op":"x"}`)) {
		t.Fatal("seal changed the caller's entry")
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*raft.Log)
		wantErr string
	}{
		{"intact", func(*raft.Log) {}, ""},
		{"legacy entry", func(l *raft.Log) { l.Data = []byte(`{"op":"x"}`) }, "no checksum envelope (version byte 0x7b"},
		{"empty", func(l *raft.Log) { l.Data = nil }, "version byte none"},
		{"term", func(l *raft.Log) { l.Term = 3 }, "checksum mismatch"},
		{"type", func(l *raft.Log) { l.Type = raft.LogConfiguration }, "checksum mismatch"},
		{"data", func(l *raft.Log) { l.Data[7] ^= 1 }, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *sealed
			c.Data = bytes.Clone(sealed.Data)
			tc.mutate(&c)
			err := unseal(&c)
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(c.Data, l.Data) {
					t.Fatalf("unseal = %v, data %q", err, c.Data)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestFlippedByteInSnapshotStopsTheNode(t *testing.T) {
	pristine := t.TempDir()
	n, err := New(testConfig(pristine, nil), fsm.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := range 10 {
		if _, _, err := n.Apply(ctx, createFleet(fmt.Sprintf("s%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	last := n.Raft().AppliedIndex()
	if err := waitApplied(t, n, last); err != nil {
		t.Fatal(err)
	}
	state := fsmState(t, n.FSM())
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	states, err := filepath.Glob(filepath.Join(pristine, "snapshots", "*", "state.bin"))
	if err != nil || len(states) != 1 {
		t.Fatalf("snapshots: %v %v", states, err)
	}
	fi, err := os.Stat(states[0])
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(pristine, states[0])
	rng := rand.New(rand.NewPCG(15, 64))
	for range 20 {
		off, mask := rng.Int64N(fi.Size()), byte(1+rng.IntN(255))
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		flip(t, filepath.Join(dir, rel), off, mask)
		_, err := New(testConfig(dir, nil), fsm.New())
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), rel) || !strings.Contains(err.Error(), "CRC mismatch") {
			t.Fatalf("flip at %d: start = %v, want a CRC error naming %s", off, err, rel)
		}
	}

	// meta.json has no CRC of its own in raft; its sidecar must catch a
	// changed index or term.
	metaRel := filepath.Join(filepath.Dir(rel), "meta.json")
	if _, err := os.Stat(filepath.Join(pristine, filepath.Dir(rel), metaSumName)); err != nil {
		t.Fatalf("no %s beside the snapshot: %v", metaSumName, err)
	}
	mi, err := os.Stat(filepath.Join(pristine, metaRel))
	if err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for range 20 {
		off, mask := rng.Int64N(mi.Size()), byte(1+rng.IntN(255))
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		flip(t, filepath.Join(dir, metaRel), off, mask)
		if outcome(t, dir, state, last, "raft storage corrupt") {
			stopped++
		}
	}
	t.Logf("20 flips in meta.json: %d stopped the node, %d left the state identical", stopped, 20-stopped)
	if stopped == 0 {
		t.Fatal("no flip in meta.json was detected")
	}
}

// faultFS is raft-wal's real file system with switches that fail writes,
// or only the creation of new segments, as a full disk does.
type faultFS struct {
	types.VFS
	writes, creates atomic.Bool
}

var errDiskFull = fmt.Errorf("write: %w", syscall.ENOSPC)

func (f *faultFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if f.creates.Load() {
		return nil, errDiskFull
	}
	w, err := f.VFS.Create(dir, name, size)
	return &faultFile{WritableFile: w, fs: f}, err
}

func (f *faultFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	w, err := f.VFS.OpenWriter(dir, name)
	return &faultFile{WritableFile: w, fs: f}, err
}

type faultFile struct {
	types.WritableFile
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.writes.Load() {
		return 0, errDiskFull
	}
	return f.WritableFile.WriteAt(p, off)
}

func TestDiskFullStopsTheNodeAndARestartRecovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(*faultFS, bool)
		want error
	}{
		// Appends fail at once.
		{"writes", func(f *faultFS, on bool) { f.writes.Store(on); f.creates.Store(on) }, syscall.ENOSPC},
		// Appends go on until the segment fills; raft-wal then cannot create
		// the next one, logs it, and refuses every append after with "segment
		// is sealed". Before the fix the node looped there with no leader.
		{"new segments", func(f *faultFS, on bool) { f.creates.Store(on) }, types.ErrSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{VFS: walfs.New()}
			n, err := New(testConfig(dir, ffs), fsm.New())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			var acked []string
			apply := func(name string) error {
				_, _, err := n.Apply(ctx, createFleet(name))
				if err == nil {
					acked = append(acked, name)
				}
				return err
			}
			for i := range 5 {
				if err := apply(fmt.Sprintf("d%02d", i)); err != nil {
					t.Fatal(err)
				}
			}
			tc.arm(ffs, true)
			failed := false
			for i := 0; i < 100 && !failed; i++ {
				failed = apply(fmt.Sprintf("e%02d", i)) != nil
			}
			if !failed {
				t.Fatal("100 writes on a full disk succeeded")
			}
			select {
			case err := <-n.Fatal():
				if !errors.Is(err, tc.want) {
					t.Fatalf("fatal = %v, want %v", err, tc.want)
				}
				t.Log(err)
			case <-time.After(waitLimit):
				t.Fatal("a full disk did not stop the node")
			}
			_ = n.Shutdown()

			// What a supervisor's restart does once space is back.
			tc.arm(ffs, false)
			n, err = New(testConfig(dir, ffs), fsm.New())
			if err != nil {
				t.Fatalf("restart after the disk emptied: %v", err)
			}
			defer n.Shutdown()
			if err := apply("after"); err != nil {
				t.Fatalf("write after restart: %v", err)
			}
			for _, name := range acked {
				if _, err := n.FSM().Fleet(name); err != nil {
					t.Fatalf("acknowledged fleet %s after restart: %v", name, err)
				}
			}
			select {
			case err := <-n.Fatal():
				t.Fatalf("fatal after restart: %v", err)
			default:
			}
		})
	}
}

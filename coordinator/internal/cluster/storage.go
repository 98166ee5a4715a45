package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// ErrCorrupt marks a log entry or snapshot whose bytes are not the bytes that
// were written. The node stops on it: see "Durability" in ARCHITECTURE.md.
var ErrCorrupt = errors.New("raft storage corrupt")

// envelopeV1 opens the Data of every entry the node stores: the version
// byte, then a CRC32C of the whole entry as raft-wal's binary codec encodes
// it (index, term, type, data, extensions, appended-at), then the original
// Data. raft-wal itself checks only the tail batch's CRC when it opens and
// BoltDB checks nothing, so this is what catches a flipped byte on read.
const (
	envelopeV1  byte = 0xC5
	envelopeLen      = 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func entryCRC(l *raft.Log) (uint32, error) {
	var buf bytes.Buffer
	if err := (&raftwal.BinaryCodec{}).Encode(l, &buf); err != nil {
		return 0, err
	}
	return crc32.Checksum(buf.Bytes(), castagnoli), nil
}

// seal returns a copy of l with the envelope around its Data; raft keeps
// using l itself, so it must not change.
func seal(l *raft.Log) (*raft.Log, error) {
	sum, err := entryCRC(l)
	if err != nil {
		return nil, err
	}
	out := *l
	out.Data = make([]byte, envelopeLen+len(l.Data))
	out.Data[0] = envelopeV1
	binary.LittleEndian.PutUint32(out.Data[1:envelopeLen], sum)
	copy(out.Data[envelopeLen:], l.Data)
	return &out, nil
}

// unseal strips the envelope from l in place and checks the sum. Entries
// without an envelope (written before it existed, by unreleased builds) are
// refused like corrupt ones: accepting them would let a flip of the version
// byte switch the check off.
func unseal(l *raft.Log) error {
	if len(l.Data) < envelopeLen || l.Data[0] != envelopeV1 {
		v := "none"
		if len(l.Data) > 0 {
			v = fmt.Sprintf("0x%02x", l.Data[0])
		}
		return fmt.Errorf("no checksum envelope (version byte %s, want 0x%02x): the entry is damaged or was written by a build older than the checksums", v, envelopeV1)
	}
	want := binary.LittleEndian.Uint32(l.Data[1:envelopeLen])
	l.Data = l.Data[envelopeLen:]
	if len(l.Data) == 0 {
		// The codec reads an empty Data back as nil; hash it the way it was
		// written.
		l.Data = nil
	}
	got, err := entryCRC(l)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return nil
}

// checkedLogStore puts the checksum envelope on every entry and reports any
// failure to read or write the log to onFatal: raft would otherwise log a
// failed read and retry forever (replication), panic without naming the file
// (apply), or loop on a store that can no longer append (a full disk leaves
// raft-wal with a sealed tail it never rotates).
type checkedLogStore struct {
	raft.LogStore
	// where names the file that holds an index, for error messages.
	where   func(index uint64) string
	onFatal func(error)
	// last is nil where the log's end is not tracked (tests of the
	// envelope alone).
	last *lastIndexFile
	// acked is the highest index stored. raft appends from its main
	// goroutine but compacts from its snapshot goroutine.
	acked atomic.Uint64
}

var _ raft.MonotonicLogStore = (*checkedLogStore)(nil)

func (s *checkedLogStore) fail(index uint64, err error) error {
	err = fmt.Errorf("%w: %s, index %d: %w", ErrCorrupt, s.where(index), index, err)
	s.onFatal(err)
	return err
}

func (s *checkedLogStore) GetLog(index uint64, l *raft.Log) error {
	if err := s.LogStore.GetLog(index, l); err != nil {
		if errors.Is(err, raft.ErrLogNotFound) {
			return err
		}
		return s.fail(index, err)
	}
	if l.Index != index {
		return s.fail(index, fmt.Errorf("entry says index %d", l.Index))
	}
	if err := unseal(l); err != nil {
		return s.fail(index, err)
	}
	return nil
}

func (s *checkedLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *checkedLogStore) StoreLogs(logs []*raft.Log) error {
	sealed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		var err error
		if sealed[i], err = seal(l); err != nil {
			return err
		}
	}
	if err := s.LogStore.StoreLogs(sealed); err != nil {
		err = fmt.Errorf("append to raft log (%s): %w", s.where(logs[0].Index), err)
		s.onFatal(err)
		return err
	}
	last := logs[len(logs)-1].Index
	s.acked.Store(last)
	if s.last != nil {
		if err := s.last.set(last, false); err != nil {
			err = fmt.Errorf("record the raft log's last index: %w", err)
			s.onFatal(err)
			return err
		}
	}
	return nil
}

func (s *checkedLogStore) DeleteRange(min, max uint64) error {
	if s.last != nil && max >= s.acked.Load() {
		// The tail goes; the next append records the new end.
		if err := s.last.set(0, true); err != nil {
			err = fmt.Errorf("record the raft log's last index: %w", err)
			s.onFatal(err)
			return err
		}
		s.acked.Store(0)
	}
	if err := s.LogStore.DeleteRange(min, max); err != nil {
		err = fmt.Errorf("delete raft log entries %d-%d: %w", min, max, err)
		s.onFatal(err)
		return err
	}
	return nil
}

// IsMonotonic passes on what the wrapped store says, so raft still clears
// raft-wal's log after installing a snapshot.
func (s *checkedLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// verifyLog reads every entry once, before raft starts, so damage anywhere
// in the log stops the node at startup with the file and index, instead of
// when (or if) raft reads that entry. Entries at or below snapIndex (the
// newest snapshot's) may be missing: after installing a snapshot raft
// compacts only up to what its trailing-logs setting allows, and appends
// the next entries after the snapshot, so a gap there is normal. Entries
// that are present are still checked.
func verifyLog(s raft.LogStore, snapIndex uint64) error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	if last == 0 {
		return nil
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) && i <= snapIndex {
				continue
			}
			if errors.Is(err, raft.ErrLogNotFound) {
				return fmt.Errorf("%w: index %d is missing between %d and %d", ErrCorrupt, i, first, last)
			}
			return err
		}
	}
	return nil
}

// segmentFiler remembers which segment file holds which indexes so that
// errors can name the file, and names the file in its own errors.
type segmentFiler struct {
	types.SegmentFiler
	dir string

	mu   sync.Mutex
	segs map[uint64]types.SegmentInfo // by ID
}

func newSegmentFiler(dir string, vfs types.VFS) *segmentFiler {
	return &segmentFiler{SegmentFiler: segment.NewFiler(dir, vfs), dir: dir, segs: map[uint64]types.SegmentInfo{}}
}

func (f *segmentFiler) path(info types.SegmentInfo) string {
	return filepath.Join(f.dir, segment.FileName(info))
}

func (f *segmentFiler) remember(info types.SegmentInfo) {
	f.mu.Lock()
	f.segs[info.ID] = info
	f.mu.Unlock()
}

func (f *segmentFiler) Create(info types.SegmentInfo) (types.SegmentWriter, error) {
	w, err := f.SegmentFiler.Create(info)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", f.path(info), err)
	}
	f.remember(info)
	return w, nil
}

func (f *segmentFiler) RecoverTail(info types.SegmentInfo) (types.SegmentWriter, error) {
	w, err := f.SegmentFiler.RecoverTail(info)
	if err != nil {
		// Open treats a missing tail specially; keep the error's identity.
		return nil, fmt.Errorf("%w: recover segment %s (from index %d): %w", ErrCorrupt, f.path(info), info.BaseIndex, err)
	}
	f.remember(info)
	return w, nil
}

func (f *segmentFiler) Open(info types.SegmentInfo) (types.SegmentReader, error) {
	r, err := f.SegmentFiler.Open(info)
	if err != nil {
		return nil, fmt.Errorf("%w: open segment %s (index %d-%d): %w", ErrCorrupt, f.path(info), info.MinIndex, info.MaxIndex, err)
	}
	f.remember(info)
	return r, nil
}

func (f *segmentFiler) Delete(baseIndex, id uint64) error {
	f.mu.Lock()
	delete(f.segs, id)
	f.mu.Unlock()
	return f.SegmentFiler.Delete(baseIndex, id)
}

// where names the segment whose BaseIndex is the highest at or below index.
func (f *segmentFiler) where(index uint64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	infos := make([]types.SegmentInfo, 0, len(f.segs))
	for _, s := range f.segs {
		infos = append(infos, s)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].BaseIndex < infos[j].BaseIndex })
	name := "segment file unknown in " + f.dir
	for _, s := range infos {
		if s.BaseIndex <= index {
			name = "file " + f.path(s)
		}
	}
	return name
}

// checkedSnapshotStore makes a snapshot that fails its CRC fatal. raft
// otherwise logs the failure and, at startup, falls back to an older
// snapshot, whose log suffix may already be compacted away. raft's CRC64
// covers state.bin only, so a sidecar, meta.sum, holds a CRC32C of
// meta.json: a changed index there would make raft replay entries the state
// already holds.
type checkedSnapshotStore struct {
	raft.SnapshotStore
	dir     string
	onFatal func(error)
}

const metaSumName = "meta.sum"

func (s *checkedSnapshotStore) path(id string, name string) string {
	return filepath.Join(s.dir, "snapshots", id, name)
}

func (s *checkedSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &summedSink{SnapshotSink: sink, store: s}, nil
}

type summedSink struct {
	raft.SnapshotSink
	store *checkedSnapshotStore
}

// Close lets the file store finish the snapshot, then sums its meta.json.
// A crash in between leaves a snapshot without meta.sum, which is accepted
// unchecked: flipped bits do not delete files.
func (k *summedSink) Close() error {
	if err := k.SnapshotSink.Close(); err != nil {
		return err
	}
	meta, err := os.ReadFile(k.store.path(k.ID(), "meta.json"))
	if err != nil {
		return fmt.Errorf("sum snapshot meta: %w", err)
	}
	f, err := os.Create(k.store.path(k.ID(), metaSumName))
	if err != nil {
		return fmt.Errorf("sum snapshot meta: %w", err)
	}
	_, err = fmt.Fprintf(f, "%08x\n", crc32.Checksum(meta, castagnoli))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sum snapshot meta: %w", err)
	}
	return nil
}

// checkMeta compares meta.json with its sum, when there is one.
func (s *checkedSnapshotStore) checkMeta(id string) error {
	sum, err := os.ReadFile(s.path(id, metaSumName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	meta, err := os.ReadFile(s.path(id, "meta.json"))
	if err != nil {
		return err
	}
	if got := fmt.Sprintf("%08x\n", crc32.Checksum(meta, castagnoli)); got != string(sum) {
		return fmt.Errorf("meta.json checksum mismatch (%s says %q, computed %q)", metaSumName, bytes.TrimSpace(sum), strings.TrimSpace(got))
	}
	return nil
}

func (s *checkedSnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	err := s.checkMeta(id)
	var (
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
	)
	if err == nil {
		meta, rc, err = s.SnapshotStore.Open(id)
	}
	if err != nil {
		err = fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, s.path(id, "state.bin"), err)
		s.onFatal(err)
		return nil, nil, err
	}
	return meta, rc, nil
}

// verifySnapshots checks every snapshot's meta.json and opens the newest
// (which checks its CRC64), so damage stops the node before raft starts. A
// snapshot whose meta.json no longer parses is one raft would skip without
// a word.
func verifySnapshots(s *checkedSnapshotStore) error {
	list, err := s.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	listed := map[string]bool{}
	for _, m := range list {
		listed[m.ID] = true
	}
	dirs, err := os.ReadDir(filepath.Join(s.dir, "snapshots"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, d := range dirs {
		if !d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") {
			continue
		}
		if err := s.checkMeta(d.Name()); err != nil {
			return fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, s.path(d.Name(), "meta.json"), err)
		}
		if !listed[d.Name()] {
			var m raft.SnapshotMeta
			b, err := os.ReadFile(s.path(d.Name(), "meta.json"))
			if err == nil {
				err = json.Unmarshal(b, &m)
			}
			if err != nil {
				return fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, s.path(d.Name(), "meta.json"), err)
			}
		}
	}
	if len(list) == 0 {
		return nil
	}
	_, rc, err := s.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("%w (index %d)", err, list[0].Index)
	}
	return rc.Close()
}

// lastIndexFile keeps the highest index the log store has acknowledged, so
// that a log which comes back shorter is noticed. raft-wal rebuilds its tail
// segment by reading frames until they stop making sense, so a tail that
// was truncated, or damaged in its last batch, just ends early: without this
// the node would silently forget entries it had acknowledged (and voted
// with).
//
// The value is written after each append without an fsync: it is only ever
// written once the entries it names are durable, so what survives a power
// loss is never ahead of the log. Removing the log's tail is the one thing
// that lowers it; before that the file is set to 0 (no check) durably.
type lastIndexFile struct {
	f *os.File
}

const lastIndexName = "raft-last-index"

func openLastIndex(dir string) (*lastIndexFile, uint64, error) {
	f, err := os.OpenFile(filepath.Join(dir, lastIndexName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	var b [12]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, 0, err
	}
	if n < len(b) || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		// New, or torn: it only adds a check, so start without one.
		return &lastIndexFile{f: f}, 0, nil
	}
	return &lastIndexFile{f: f}, binary.LittleEndian.Uint64(b[:8]), nil
}

func (l *lastIndexFile) set(index uint64, sync bool) error {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], index)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	if _, err := l.f.WriteAt(b[:], 0); err != nil {
		return err
	}
	if sync {
		return l.f.Sync()
	}
	return nil
}

func (l *lastIndexFile) Close() error { return l.f.Close() }

// checkLastIndex compares the log with the index it acknowledged last.
func checkLastIndex(s raft.LogStore, acked uint64, where func(uint64) string) error {
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	if last < acked {
		return fmt.Errorf("%w: the log ends at index %d (%s) but index %d was stored before (%s): entries %d-%d are lost",
			ErrCorrupt, last, where(last), acked, lastIndexName, last+1, acked)
	}
	return nil
}

package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Suffix ends every file this package writes; only such files are pruned.
const Suffix = ".snap"

// stampLayout is the UTC time in a file's name; names sort by it.
const stampLayout = "20060102T150405.000Z"

// Config is where, how often and how many.
type Config struct {
	// Dir is where files go; empty turns scheduled snapshots off.
	Dir string
	// Interval is the time between two files.
	Interval time.Duration
	// Retain is how many of this node's files are kept; older ones are
	// removed after each new one is in place.
	Retain int
}

// DefaultConfig is off (no Dir), hourly, a day's worth kept.
func DefaultConfig() Config {
	return Config{Interval: time.Hour, Retain: 24}
}

// MaxRetain bounds Retain: a bad flag must not fill the disk.
const MaxRetain = 1000

// Validate names the flag that is wrong and why.
func (c Config) Validate() error {
	if c.Dir == "" {
		return nil
	}
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("snapshot-interval (%v): must be >= 1s", c.Interval)
	case c.Retain < 1 || c.Retain > MaxRetain:
		return fmt.Errorf("snapshot-retain (%d): must be between 1 and %d", c.Retain, MaxRetain)
	}
	return nil
}

// Writer writes one node's snapshots.
type Writer struct {
	cfg    Config
	node   string
	save   func() []byte
	now    func() time.Time
	log    *slog.Logger
	prefix string
	// A backup that stops being written is found by its metrics, not by a
	// log line nobody reads: failures counted, the last success stamped.
	failed prometheus.Counter
	last   prometheus.Gauge
}

// Metric names, on the node's /metrics.
const (
	FailuresMetric    = "shoal_scheduled_snapshot_failures_total"
	LastSuccessMetric = "shoal_scheduled_snapshot_last_success_timestamp_seconds"
)

// New returns a writer of node's state as save encodes it (the FSM's Save,
// the bytes `snapshot save` writes).
func New(cfg Config, node string, save func() []byte, now func() time.Time, log *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("snapshot-dir: required")
	}
	if strings.ContainsAny(node, `/\`) || node == "" {
		return nil, fmt.Errorf("node-id (%q): cannot name a snapshot file", node)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot-dir (%q): %w", cfg.Dir, err)
	}
	return &Writer{cfg: cfg, node: node, save: save, now: now, log: log, prefix: "shoal-" + node + "-",
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: FailuresMetric, Help: "Scheduled snapshots (--snapshot-dir) that failed to be written or pruned."}),
		last:   prometheus.NewGauge(prometheus.GaugeOpts{Name: LastSuccessMetric, Help: "Unix time of the last scheduled snapshot written (0: none yet)."}),
	}, nil
}

// Register exposes the writer's metrics on reg.
func (w *Writer) Register(reg prometheus.Registerer) error {
	if err := reg.Register(w.failed); err != nil {
		return err
	}
	return reg.Register(w.last)
}

// Run writes a file every Interval until ctx ends. The first file is written
// one Interval after the start, so a node that crash-loops does not churn
// its snapshots.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if path, err := w.WriteOnce(); err != nil {
				w.failed.Inc()
				w.log.Error("scheduled snapshot failed", "dir", w.cfg.Dir, "err", err)
			} else {
				w.log.Info("scheduled snapshot written", "file", path)
			}
		}
	}
}

// WriteOnce writes one file now, then prunes, and returns its path.
func (w *Writer) WriteOnce() (string, error) {
	data := w.save()
	name := w.prefix + w.now().UTC().Format(stampLayout) + Suffix
	final := filepath.Join(w.cfg.Dir, name)
	tmp, err := os.CreateTemp(w.cfg.Dir, ".tmp-"+name+"-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	// The state holds token hashes and policies: readable by the service
	// user only.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	w.last.Set(float64(w.now().Unix()))
	return final, w.prune()
}

// Files lists this node's snapshot files in dir, oldest first (the names
// sort by time).
func Files(dir, node string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := "shoal-" + node + "-"
	var out []string
	for _, e := range ents {
		n := e.Name()
		stamp, ok := strings.CutPrefix(n, prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		stamp, ok = strings.CutSuffix(stamp, Suffix)
		// The rest must be a stamp: node "c"'s prefix "shoal-c-" also
		// starts node "c-1"'s files, which are never this node's to prune.
		if _, err := time.Parse(stampLayout, stamp); ok && err == nil {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (w *Writer) prune() error {
	files, err := Files(w.cfg.Dir, w.node)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files[:max(0, len(files)-w.cfg.Retain)] {
		if err := os.Remove(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package backup

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestValidate(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"off":            {Config{}, ""},
		"default on":     {Config{Dir: "/x", Interval: time.Hour, Retain: 24}, ""},
		"too often":      {Config{Dir: "/x", Interval: time.Millisecond, Retain: 1}, "snapshot-interval"},
		"keeps none":     {Config{Dir: "/x", Interval: time.Hour}, "snapshot-retain"},
		"keeps too many": {Config{Dir: "/x", Interval: time.Hour, Retain: MaxRetain + 1}, "snapshot-retain"},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.cfg.Validate()
			if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

func TestRunWritesAndPrunes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		gen := 0
		save := func() []byte { gen++; return []byte{byte(gen)} }
		w, err := New(Config{Dir: dir, Interval: time.Hour, Retain: 2}, "c-0", save, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		// A file of another node in the same directory is never pruned.
		other := dir + "/shoal-c-1-20000101T000000.000Z.snap"
		if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Nor is one of node "c-0-a", whose names start with this node's
		// prefix "shoal-c-0-".
		longer := dir + "/shoal-c-0-a-20000101T000000.000Z.snap"
		if err := os.WriteFile(longer, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		time.Sleep(time.Hour - time.Second)
		synctest.Wait()
		if files, _ := Files(dir, "c-0"); len(files) != 0 {
			t.Fatalf("wrote %v before the first interval", files)
		}
		time.Sleep(3*time.Hour + 2*time.Second) // four intervals in all
		synctest.Wait()
		cancel()
		<-done
		files, err := Files(dir, "c-0")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 2 {
			t.Fatalf("files = %v, want the newest 2", files)
		}
		for i, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := []byte{byte(3 + i)}; !bytes.Equal(b, want) {
				t.Errorf("%s holds %v, want save()'s output %v (the newest, in name order)", f, b, want)
			}
			if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
			}
		}
		for _, f := range []string{other, longer} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("another node's file was pruned: %v", err)
			}
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 4 {
			t.Errorf("dir holds %d entries, want 4 (no temporary files left)", len(ents))
		}
	})
}

// A write that fails is counted, and the last success stays stamped with
// the time of the last file, so an alert sees backups stop.
func TestMetricsCountFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir() + "/snaps"
		w, err := New(Config{Dir: dir, Interval: time.Hour, Retain: 2}, "c-0", func() []byte { return []byte("s") }, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		if err := w.Register(reg); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		written := time.Now().Add(-time.Second).Unix()
		if got := testutil.ToFloat64(w.last); got != float64(written) {
			t.Errorf("%s = %v, want %d (the first file's time)", LastSuccessMetric, got, written)
		}
		// The directory goes: the next two writes fail.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		cancel()
		<-done
		if got := testutil.ToFloat64(w.failed); got != 2 {
			t.Errorf("%s = %v, want 2", FailuresMetric, got)
		}
		if got := testutil.ToFloat64(w.last); got != float64(written) {
			t.Errorf("%s = %v after failures, want it still %d", LastSuccessMetric, got, written)
		}
		if n, err := testutil.GatherAndCount(reg, FailuresMetric, LastSuccessMetric); err != nil || n != 2 {
			t.Errorf("registry holds %d of the 2 metrics: %v", n, err)
		}
	})
}

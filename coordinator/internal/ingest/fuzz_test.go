package ingest

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// FuzzValidate feeds SampleBatch wire bytes, as an agent sends them, to the
// check every sample passes before it reaches the store. Every sample is
// either accepted or counted as rejected with a reason, and an accepted one
// keeps every bound the store and the decide engine rely on.
func FuzzValidate(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	s, err := New(cfg, &fakeCluster{id: "n1", leader: true}, newRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		var b shoalv1.SampleBatch
		if proto.Unmarshal(wire, &b) != nil {
			return // grpc refuses what does not unmarshal before ingest sees it
		}
		ok, rejected, reasons := s.validate(b.Samples, now)
		if len(ok)+rejected != len(b.Samples) {
			t.Fatalf("%d accepted + %d rejected != %d samples", len(ok), rejected, len(b.Samples))
		}
		if (rejected > 0) != (reasons != "") {
			t.Fatalf("rejected %d with reasons %q", rejected, reasons)
		}
		if len(ok) > cfg.MaxBatchSamples {
			t.Fatalf("accepted %d samples, more than %d", len(ok), cfg.MaxBatchSamples)
		}
		for _, smp := range ok {
			ts := smp.GetUnixMs()
			if ts > now.Add(cfg.MaxFuture).UnixMilli() || ts < now.Add(-cfg.MaxAge).UnixMilli() {
				t.Fatalf("accepted unix_ms %d outside [now-%v, now+%v]", ts, cfg.MaxAge, cfg.MaxFuture)
			}
			if len(smp.Values) == 0 {
				t.Fatal("accepted a sample without values")
			}
			custom := 0
			for name, v := range smp.Values {
				if !builtin[name] {
					custom++
					if !customName.MatchString(name) {
						t.Fatalf("accepted metric name %q", name)
					}
				}
				if !(v >= 0) || math.IsInf(v, 0) {
					t.Fatalf("accepted %s = %v", name, v)
				}
			}
			if custom > cfg.MaxCustomMetrics {
				t.Fatalf("accepted %d custom metrics", custom)
			}
		}
		// What passed must be storable: route it as the stream does.
		h := hello("i-fuzz", 1)
		if len(ok) > 0 {
			if err := s.route(&clusterv1.InstanceReport{Hello: h, Samples: ok}); err != nil {
				t.Fatalf("route of accepted samples: %v", err)
			}
		}
	})
}

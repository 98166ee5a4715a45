package publish

import (
	"testing"
)

// BenchmarkBuild2500 measures turning a period of 2,500 series into
// requests, the work Publish does on the caller's goroutine.
func BenchmarkBuild2500(b *testing.B) {
	c := DefaultConfig()
	c.Logger = quietLogger()
	p, err := New(nil, c)
	if err != nil {
		b.Fatal(err)
	}
	per := bigPeriod(2500)
	b.ReportAllocs()
	for b.Loop() {
		if n := len(p.build(per)); n != 3 {
			b.Fatalf("%d requests", n)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedTracesMatchGenerator keeps deploy/traces/*.csv honest: they
// must be exactly what this generator writes.
func TestCommittedTracesMatchGenerator(t *testing.T) {
	dir := t.TempDir()
	for _, tr := range traces {
		t.Run(tr.name, func(t *testing.T) {
			path := filepath.Join(dir, tr.name+".csv")
			if err := write(path, tr); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			want, err := os.ReadFile(filepath.Join("..", tr.name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("deploy/traces/%s.csv differs from the generator's output; run go run ./deploy/traces/gen -out deploy/traces", tr.name)
			}
		})
	}
}

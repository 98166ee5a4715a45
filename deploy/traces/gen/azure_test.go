package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const azureFixture = `TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,100,0
2023-11-16 18:15:46.9000000,300,0
2023-11-16 18:15:48.1000000,200,0
2023-11-16 18:15:49.0000000,1,1
`

func TestPerSecond(t *testing.T) {
	reqs, err := readAzure(strings.NewReader(azureFixture))
	if err != nil {
		t.Fatal(err)
	}
	// Seconds 46, 47, 48; the last (49) is cut short and left out.
	if got := perSecond(reqs, azureTrace{weight: byRequest, scale: 10}); !reflect.DeepEqual(got, []float64{20, 0, 10}) {
		t.Fatalf("by request = %v, want [20 0 10]", got)
	}
	// Mean tokens 601/4 = 150.25: 400/150.25 × 10 and 200/150.25 × 10.
	if got := perSecond(reqs, azureTrace{weight: byTokens, scale: 10}); !reflect.DeepEqual(got, []float64{26.6, 0, 13.3}) {
		t.Fatalf("by tokens = %v, want [26.6 0 13.3]", got)
	}
	var b bytes.Buffer
	if err := writeDemand(&b, []float64{5, 5, 5, 7, 7}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "time,demand\n0,5\n3,7\n4,7\n" {
		t.Fatalf("writeDemand = %q", b.String())
	}
}

func TestReadAzureErrors(t *testing.T) {
	for name, in := range map[string]string{
		"header":        "time,a,b\n",
		"timestamp":     "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,1\n",
		"tokens":        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,-1,1\n",
		"goes back":     "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,1,1\n2023-11-16 18:15:45.68,1,1\n",
		"too long":      "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,1,1\n2023-12-30 18:15:46.68,1,1\n",
		"no rows":       "TIMESTAMP,ContextTokens,GeneratedTokens\n",
		"fields differ": "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,1\n",
	} {
		if _, err := readAzure(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCommittedAzureTracesMatchSource re-derives the committed azure-conv
// traces from the source trace when it is at hand: $SHOAL_AZURE_TRACE, or
// ../shared/traces next to the repository as the README says.
func TestCommittedAzureTracesMatchSource(t *testing.T) {
	src := os.Getenv("SHOAL_AZURE_TRACE")
	if src == "" {
		src = filepath.Join("..", "..", "..", "..", "shared", "traces", "azure-llm-inference-2023-conv.csv")
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("source trace not at hand (%v); set SHOAL_AZURE_TRACE to check the committed azure-conv traces", err)
	}
	dir := t.TempDir()
	if err := writeAzure(src, dir); err != nil {
		t.Fatal(err)
	}
	for _, tr := range azureTraces {
		got, _ := os.ReadFile(filepath.Join(dir, tr.name+".csv"))
		want, err := os.ReadFile(filepath.Join("..", tr.name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("deploy/traces/%s.csv differs from what gen derives from %s", tr.name, src)
		}
	}
}

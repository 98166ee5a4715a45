// Command gen writes Shoal's simulator traces: diurnal.csv, spike.csv and
// sawtooth.csv, each `time,demand` with demand in requests/s, and, with
// -azure, azure-conv.csv and azure-conv-tokens.csv derived from Azure's LLM
// inference trace 2023 (azure.go; provenance in deploy/traces/README.md).
// It is deterministic (fixed seeds), so re-running it reproduces the
// committed files byte for byte:
//
//	go run ./deploy/traces/gen -out deploy/traces -azure ../shared/traces/azure-llm-inference-2023-conv.csv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

type trace struct {
	name string
	step int // seconds between rows
	end  int // last second
	seed uint64
	f    func(t float64) float64
	// noise is the relative standard deviation of the multiplicative noise.
	noise float64
}

var traces = []trace{
	{
		// A day: quiet at night (300 req/s), a broad peak in the afternoon
		// (about 2000 req/s) with a smaller morning shoulder.
		name: "diurnal", step: 10, end: 86400, seed: 1, noise: 0.04,
		f: func(t float64) float64 {
			day := 2 * math.Pi * t / 86400
			base := (1 - math.Cos(day-0.6)) / 2 // peaks mid-afternoon
			shoulder := 0.15 * math.Max(0, math.Sin(2*day))
			return 300 + 1700*(base+shoulder)/1.15
		},
	},
	{
		// An hour at 400 req/s with a flash crowd: 5x in 20 s at 15 min,
		// held 10 min, then easing back over 5 min.
		name: "spike", step: 1, end: 3600, seed: 2, noise: 0.03,
		f: func(t float64) float64 {
			const base, peak = 400.0, 2000.0
			switch {
			case t < 900:
				return base
			case t < 920:
				return base + (peak-base)*(t-900)/20
			case t < 1500:
				return peak
			case t < 1800:
				return peak - (peak-base)*(t-1500)/300
			default:
				return base
			}
		},
	},
	{
		// Two hours of a 4-minute sawtooth: load climbs from 300 to
		// 1100 req/s over 200 s and falls back in 40 s. Each fall invites a
		// scale-in that the next climb undoes.
		name: "sawtooth", step: 1, end: 7200, seed: 3, noise: 0.02,
		f: func(t float64) float64 {
			ph := math.Mod(t, 240)
			if ph < 200 {
				return 300 + 800*ph/200
			}
			return 1100 - 800*(ph-200)/40
		},
	},
}

func main() {
	out := flag.String("out", ".", "directory to write the CSV files into")
	azure := flag.String("azure", "", "Azure LLM inference trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens) to derive the azure-conv traces from; empty skips them")
	flag.Parse()
	if *azure != "" {
		if err := writeAzure(*azure, *out); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	for _, tr := range traces {
		if err := write(filepath.Join(*out, tr.name+".csv"), tr); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

func write(path string, tr trace) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(tr.seed, 0x5eed))
	fmt.Fprintln(w, "time,demand")
	for t := 0; t <= tr.end; t += tr.step {
		d := tr.f(float64(t)) * (1 + tr.noise*rng.NormFloat64())
		fmt.Fprintf(w, "%d,%.1f\n", t, math.Max(0, d))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

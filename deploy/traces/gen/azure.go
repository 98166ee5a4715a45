package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// The Azure LLM inference trace 2023 (conversation service): one row per
// request, `TIMESTAMP,ContextTokens,GeneratedTokens`. See
// deploy/traces/README.md for provenance and licence.

// azureLayout is the trace's timestamp: 2023-11-16 18:15:46.6805900.
const azureLayout = "2006-01-02 15:04:05.9999999"

// Bounds on the input: a trace longer than the simulator takes, or with
// more rows than a month of 1 000 requests a second, is refused.
const (
	maxAzureRows   = 3_000_000_000 / 1000
	maxAzureSpanS  = 31 * 24 * 3600
	maxAzureTokens = 10_000_000
)

// weight is how one request counts in the demand.
type weight int

const (
	// byRequest counts each request as one.
	byRequest weight = iota
	// byTokens counts a request as its context plus generated tokens over
	// the trace's mean tokens per request: the same mean demand, with a
	// long request weighing more, as it does on an inference server.
	byTokens
)

// azureTrace is one derived trace.
type azureTrace struct {
	name   string
	weight weight
	// scale multiplies the per-second count, so the hour's 5.5 requests/s
	// becomes a fleet of a few instances at 100 requests/s each.
	scale float64
}

var azureTraces = []azureTrace{
	{name: "azure-conv", weight: byRequest, scale: 100},
	{name: "azure-conv-tokens", weight: byTokens, scale: 100},
}

type request struct {
	at     time.Time
	tokens int64
}

// readAzure parses the trace. Errors name the line and the column.
func readAzure(r io.Reader) ([]request, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = 3
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if strings.Join(head, ",") != "TIMESTAMP,ContextTokens,GeneratedTokens" {
		return nil, fmt.Errorf("line 1: header must be TIMESTAMP,ContextTokens,GeneratedTokens, got %q", strings.Join(head, ","))
	}
	var out []request
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(out) >= maxAzureRows {
			return nil, fmt.Errorf("line %d: more than %d requests", line, maxAzureRows)
		}
		at, err := time.Parse(azureLayout, rec[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: TIMESTAMP: %w", line, err)
		}
		var tok int64
		for i, name := range []string{"ContextTokens", "GeneratedTokens"} {
			n, err := strconv.ParseInt(rec[i+1], 10, 64)
			if err != nil || n < 0 || n > maxAzureTokens {
				return nil, fmt.Errorf("line %d: %s: want an integer in [0, %d], got %q", line, name, maxAzureTokens, rec[i+1])
			}
			tok += n
		}
		if n := len(out); n > 0 && at.Before(out[n-1].at) {
			return nil, fmt.Errorf("line %d: TIMESTAMP: %s is before the previous row's %s", line, rec[0], out[n-1].at.Format(azureLayout))
		}
		if n := len(out); n > 0 && at.Sub(out[0].at) > maxAzureSpanS*time.Second {
			return nil, fmt.Errorf("line %d: TIMESTAMP: the trace spans more than 31 days", line)
		}
		out = append(out, request{at: at, tokens: tok})
	}
	if len(out) == 0 {
		return nil, errors.New("no requests after the header")
	}
	return out, nil
}

// perSecond turns requests into demand per whole second from the first
// request's second: the weighted count of requests arriving in [s, s+1),
// times the scale. The last second, which the trace cuts short, is left out.
func perSecond(reqs []request, tr azureTrace) []float64 {
	start := reqs[0].at.Truncate(time.Second)
	last := int(reqs[len(reqs)-1].at.Sub(start) / time.Second)
	out := make([]float64, last)
	var meanTok float64
	for _, r := range reqs {
		meanTok += float64(r.tokens)
	}
	meanTok /= float64(len(reqs))
	for _, r := range reqs {
		s := int(r.at.Sub(start) / time.Second)
		if s >= last {
			continue
		}
		w := 1.0
		if tr.weight == byTokens && meanTok > 0 {
			w = float64(r.tokens) / meanTok
		}
		out[s] += w
	}
	for i := range out {
		out[i] = math.Round(out[i]*tr.scale*10) / 10
	}
	return out
}

// writeDemand writes `time,demand`, one row per second where demand
// changes (the simulator holds a value until the next row), plus the last.
func writeDemand(w io.Writer, d []float64) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "time,demand")
	for i, v := range d {
		if i > 0 && i < len(d)-1 && v == d[i-1] {
			continue
		}
		fmt.Fprintf(bw, "%d,%s\n", i, strconv.FormatFloat(v, 'f', -1, 64))
	}
	return bw.Flush()
}

// writeAzure derives every azure trace from the source file into dir.
func writeAzure(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	reqs, err := readAzure(io.LimitReader(f, 1<<30))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	for _, tr := range azureTraces {
		if err := writeFile(dir+"/"+tr.name+".csv", func(w io.Writer) error { return writeDemand(w, perSecond(reqs, tr)) }); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

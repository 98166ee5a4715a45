package identity

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSplitAddrs feeds arbitrary text, as an IMDS tag or --coordinators
// gives it, to SplitAddrs. Every address is non-blank, trimmed and free of
// commas; joining them back and splitting again is a fixed point; and no
// non-blank part of the input is lost.
func FuzzSplitAddrs(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got := SplitAddrs(s)
		parts := 0
		for _, p := range strings.Split(s, ",") {
			if strings.TrimSpace(p) != "" {
				parts++
			}
		}
		if len(got) != parts {
			t.Fatalf("%q: %d addresses, want %d: %q", s, len(got), parts, got)
		}
		for _, a := range got {
			if a == "" || a != strings.TrimSpace(a) || strings.Contains(a, ",") {
				t.Fatalf("%q: address %q is blank, untrimmed or holds a comma", s, a)
			}
			if utf8.ValidString(s) && !utf8.ValidString(a) {
				t.Fatalf("%q: address %q cuts a character", s, a)
			}
		}
		again := SplitAddrs(strings.Join(got, ","))
		if strings.Join(again, "\x00") != strings.Join(got, "\x00") {
			t.Fatalf("%q: split of the joined %q is %q", s, got, again)
		}
	})
}

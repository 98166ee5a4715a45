package simulate

import "testing"

// BenchmarkRunDiurnal simulates the day-long trace (86 401 simulated
// seconds) under all three policies.
func BenchmarkRunDiurnal(b *testing.B) {
	tr, f := loadExample(b, "diurnal.csv")
	s := Setup{Fleet: f, Config: DefaultConfig(), Compare: []string{PolicyAWS, PolicyHPA}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(tr, s); err != nil {
			b.Fatal(err)
		}
	}
}

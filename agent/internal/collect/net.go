package collect

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// Net is host network throughput from /proc/net/dev, summed over interfaces.
type Net struct {
	FS procfs.FS
	// Loopback counts lo too.
	Loopback bool

	prevAt   time.Time
	prevRx   uint64
	prevTx   uint64
	havePrev bool
}

// Collect returns net_rx and net_tx from the second call on.
func (n *Net) Collect(now time.Time) (map[string]float64, error) {
	dev, err := n.FS.NetDev()
	if err != nil {
		return nil, fmt.Errorf("net: %w", err)
	}
	rx, tx := NetTotals(dev, n.Loopback)
	prevAt, prevRx, prevTx, had := n.prevAt, n.prevRx, n.prevTx, n.havePrev
	n.prevAt, n.prevRx, n.prevTx, n.havePrev = now, rx, tx, true
	dt := now.Sub(prevAt).Seconds()
	// Counters going back means an interface vanished; skip one reading
	// rather than report a negative or huge rate.
	if !had || dt <= 0 || rx < prevRx || tx < prevTx {
		return nil, nil
	}
	return map[string]float64{
		MetricNetRx: float64(rx-prevRx) / dt,
		MetricNetTx: float64(tx-prevTx) / dt,
	}, nil
}

// NetTotals sums received and transmitted bytes over the interfaces.
func NetTotals(dev procfs.NetDev, loopback bool) (rx, tx uint64) {
	for name, l := range dev {
		if name == "lo" && !loopback {
			continue
		}
		rx += l.RxBytes
		tx += l.TxBytes
	}
	return rx, tx
}

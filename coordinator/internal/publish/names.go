package publish

import (
	"errors"
	"fmt"
	"sort"
)

// Namespace is where every Shoal metric goes.
const Namespace = "Shoal"

// Dimension names on every Shoal series.
const (
	DimGroup    = "AutoScalingGroupName"
	DimCluster  = "ShoalCluster"
	DimInstance = "InstanceId"
)

// HeartbeatMetric is the coordinator's own liveness series.
const HeartbeatMetric = "CoordinatorHeartbeat"

// vocabulary maps Shoal's metric words (ARCHITECTURE.md) to CloudWatch names
// and units. Anything else is a custom metric, published under its own name.
var vocabulary = map[string]struct{ name, unit string }{
	"cpu":                 {"CPUUtilization", "Percent"},
	"mem":                 {"MemoryUtilization", "Percent"},
	"load1":               {"LoadAverage1", "None"},
	"net_rx":              {"NetworkIn", "Bytes/Second"},
	"net_tx":              {"NetworkOut", "Bytes/Second"},
	"disk":                {"DiskUtilization", "Percent"},
	"requests_per_target": {"RequestsPerTarget", "Count/Second"},
}

// DefaultStandardMetrics are the vocabulary metrics published for every
// fleet; the rest of the vocabulary is left out because every series costs
// money and the issue asks for these three.
var DefaultStandardMetrics = []string{"cpu", "mem", "requests_per_target"}

// CloudWatchName is the CloudWatch metric name of a Shoal metric.
func CloudWatchName(metric string) string {
	if v, ok := vocabulary[metric]; ok {
		return v.name
	}
	return metric
}

// ShoalName is the inverse of CloudWatchName.
func ShoalName(cwName string) string {
	for k, v := range vocabulary {
		if v.name == cwName {
			return k
		}
	}
	return cwName
}

func unitOf(metric string) string {
	if v, ok := vocabulary[metric]; ok {
		return v.unit
	}
	return "None"
}

// IsCustom reports whether metric is outside Shoal's vocabulary.
func IsCustom(metric string) bool {
	_, ok := vocabulary[metric]
	return !ok
}

// ErrBadMetricName is returned for a name CloudWatch would refuse.
var ErrBadMetricName = errors.New("bad metric name")

// ValidateMetricName checks a custom metric name against CloudWatch's rules:
// 1 to 255 printable ASCII characters, not starting with ':'.
func ValidateMetricName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: metric name %q must be 1 to 255 characters", ErrBadMetricName, name)
	}
	for _, r := range name {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%w: metric name %q must be printable ASCII", ErrBadMetricName, name)
		}
	}
	if name[0] == ':' {
		return fmt.Errorf("%w: metric name %q must not start with ':'", ErrBadMetricName, name)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

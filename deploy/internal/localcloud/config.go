package localcloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("localcloud config")

// Config configures a local cloud; start from DefaultConfig.
type Config struct {
	// Addr is the listen address of the AWS endpoint and the test hooks.
	Addr string
	// BootDelay is how long an instance stays pending before it is running
	// (and InService in its group); zero boots at once.
	BootDelay time.Duration
	// WarmBootDelay is how long an instance taken from a warm pool stays
	// pending before it is running/InService: it was initialised already,
	// so it is shorter than BootDelay.
	WarmBootDelay time.Duration
	// StateFile, when set, persists groups, launch templates, images, hooks
	// and alarms across restarts (instances are processes and are not).
	StateFile string
	// AlarmInterval is how often alarms are evaluated.
	AlarmInterval time.Duration
	// TerminateGrace is the wait between SIGTERM and SIGKILL when an
	// instance is terminated.
	TerminateGrace time.Duration
	// ReconcileInterval is how often groups and instances are reconciled.
	ReconcileInterval time.Duration
	// LaunchRetry is how long a group waits after a failed launch before it
	// tries again, as AWS backs off failed launches.
	LaunchRetry time.Duration
	// InstanceIPPrefix is the /24 loopback prefix instance addresses come
	// from, e.g. "127.0.1" gives 127.0.1.1 ... 127.0.1.254; two octets give
	// a /16 for benchmarks with more instances ("127.1": 127.1.0.1 ...
	// 127.1.255.254).
	InstanceIPPrefix string
	// InstanceLogDir receives one <instance-id>.log per instance; empty
	// discards instance output.
	InstanceLogDir string
	// Shell runs UserData scripts.
	Shell string
	// Region is the only region served.
	Region string
	// AccountID is the owner of every resource, the accountId of every
	// instance identity document and the Account STS GetCallerIdentity
	// answers.
	AccountID string
	// IIDCertOut, when set, receives the PEM certificate of the key that
	// signs instance identity documents (mode 0644), written before the
	// server listens. A coordinator's --iid-trust takes this file.
	IIDCertOut string
	// Clock overrides the time source; nil uses an OffsetClock that the
	// /_localcloud/clock hook can move.
	Clock  Clock
	Logger *slog.Logger
}

var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)

// DefaultConfig is the configuration the serve command starts from.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:4566",
		BootDelay:         3 * time.Second,
		WarmBootDelay:     time.Second,
		AlarmInterval:     10 * time.Second,
		TerminateGrace:    5 * time.Second,
		ReconcileInterval: 100 * time.Millisecond,
		LaunchRetry:       10 * time.Second,
		InstanceIPPrefix:  "127.0.1",
		Shell:             "/bin/sh",
		Region:            "us-east-1",
		AccountID:         "123456789012",
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// Validate says which field is wrong and why; it changes nothing.
func (c Config) Validate() error {
	switch {
	case c.BootDelay < 0:
		return fmt.Errorf("%w: boot-delay (%s) must be >= 0", ErrConfig, c.BootDelay)
	case c.WarmBootDelay < 0:
		return fmt.Errorf("%w: warm-boot-delay (%s) must be >= 0", ErrConfig, c.WarmBootDelay)
	case c.AlarmInterval <= 0 || c.AlarmInterval > 10*time.Second:
		return fmt.Errorf("%w: alarm-interval (%s) must be > 0 and <= 10s (CloudWatch evaluates at least every 10 s)", ErrConfig, c.AlarmInterval)
	case c.TerminateGrace <= 0:
		return fmt.Errorf("%w: terminate-grace (%s) must be > 0", ErrConfig, c.TerminateGrace)
	case c.ReconcileInterval <= 0:
		return fmt.Errorf("%w: reconcile-interval (%s) must be > 0", ErrConfig, c.ReconcileInterval)
	case c.LaunchRetry <= 0:
		return fmt.Errorf("%w: launch-retry (%s) must be > 0", ErrConfig, c.LaunchRetry)
	case c.Shell == "":
		return fmt.Errorf("%w: shell is required: it runs every instance's UserData", ErrConfig)
	case !accountIDRE.MatchString(c.AccountID):
		return fmt.Errorf("%w: account id (%q) must be 12 digits, as AWS account ids are", ErrConfig, c.AccountID)
	case c.IIDCertOut != "" && (strings.HasSuffix(c.IIDCertOut, "/") || filepath.Base(c.IIDCertOut) == "."):
		return fmt.Errorf("%w: iid-cert-out (%q) must name a file, not a directory", ErrConfig, c.IIDCertOut)
	case c.Logger == nil:
		return fmt.Errorf("%w: logger is required", ErrConfig)
	case c.Region != "us-east-1":
		return fmt.Errorf("%w: region (%q) must be us-east-1: the local cloud models one region", ErrConfig, c.Region)
	}
	ip := net.ParseIP(c.InstanceIPPrefix + ".1")
	if dots := strings.Count(c.InstanceIPPrefix, "."); dots == 1 {
		ip = net.ParseIP(c.InstanceIPPrefix + ".0.1")
	} else if dots != 2 {
		ip = nil
	}
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: instance-ip-prefix (%q) must be three octets of 127.0.0.0/8, e.g. 127.0.1 (or two, e.g. 127.1, for a /16)", ErrConfig, c.InstanceIPPrefix)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: addr (%q): %v", ErrConfig, c.Addr, err)
	}
	return nil
}

package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Instance tags the agent reads through IMDS (instance metadata tags must be
// enabled on the launch template; groups propagate both at launch).
const (
	TagASG          = "aws:autoscaling:groupName"
	TagCoordinators = "shoal:coordinators"
)

var (
	// ErrIMDS wraps every failure to read the instance metadata service.
	ErrIMDS = errors.New("instance metadata")
	// ErrConfig wraps flag combinations that cannot name an instance.
	ErrConfig = errors.New("invalid identity config")
)

// Identity is what the agent says about itself in its hello.
type Identity struct {
	InstanceID       string
	PrivateIP        string
	AvailabilityZone string
	ImageID          string
	// ASG is the Auto Scaling group, from the instance tag; empty off EC2.
	ASG string
	// Fleet is set only when given with --fleet.
	Fleet string
	// Coordinators are rpc addresses, from --coordinator or the instance tag.
	Coordinators []string
}

// Config is what the flags say; IMDS fills the rest. Start from
// DefaultConfig.
type Config struct {
	InstanceID   string
	Fleet        string
	Coordinators []string
	// Endpoint overrides IMDS's address; empty means the SDK's default,
	// which honours AWS_EC2_METADATA_SERVICE_ENDPOINT.
	Endpoint string
	// Attempts bounds the tries of the whole lookup.
	Attempts int
	// Backoff is the first wait between tries, doubled each time up to
	// MaxBackoff, with jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	Logger     *slog.Logger
	HTTPClient *http.Client
}

// DefaultConfig reads everything from IMDS, trying 8 times with backoff
// from 250 ms up to 10 s.
func DefaultConfig() Config {
	return Config{
		Attempts:   8,
		Backoff:    250 * time.Millisecond,
		MaxBackoff: 10 * time.Second,
		Logger:     slog.Default(),
	}
}

// Validate says which flag is wrong and why.
func (c Config) Validate() error {
	if c.InstanceID != "" && c.Fleet == "" {
		return fmt.Errorf("%w: instance id %q needs a fleet: without IMDS nothing says which fleet it belongs to", ErrConfig, c.InstanceID)
	}
	if c.InstanceID != "" && len(c.Coordinators) == 0 {
		return fmt.Errorf("%w: instance id %q needs coordinator addresses: without IMDS there is no %s tag", ErrConfig, c.InstanceID, TagCoordinators)
	}
	if c.Attempts < 1 {
		return fmt.Errorf("%w: attempts (%d) must be >= 1", ErrConfig, c.Attempts)
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		return fmt.Errorf("%w: backoff (%s) must be > 0 and <= max backoff (%s)", ErrConfig, c.Backoff, c.MaxBackoff)
	}
	if c.Logger == nil {
		return fmt.Errorf("%w: logger is required", ErrConfig)
	}
	return nil
}

// Resolve returns the agent's identity: from the flags alone when they name
// the instance and its fleet, else from IMDS, retried with backoff.
func Resolve(ctx context.Context, cfg Config) (Identity, error) {
	if err := cfg.Validate(); err != nil {
		return Identity{}, err
	}
	if cfg.InstanceID != "" {
		return Identity{InstanceID: cfg.InstanceID, Fleet: cfg.Fleet, Coordinators: cfg.Coordinators}, nil
	}
	var id Identity
	err := withRetries(ctx, cfg, func(c *imds.Client) error {
		var err error
		id, err = fromIMDS(ctx, c, cfg)
		return err
	})
	return id, err
}

// withRetries calls try with one IMDS client until it succeeds, fails with
// ErrConfig or ErrNoEvidence (a missing tag or document will not appear by
// retrying), the context ends,
// or cfg.Attempts are used up, waiting with jittered backoff in between.
func withRetries(ctx context.Context, cfg Config, try func(*imds.Client) error) error {
	// Retries are ours (logged, bounded by Attempts), so the SDK's are off.
	opts := imds.Options{Endpoint: cfg.Endpoint, Retryer: aws.NopRetryer{}}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	client := imds.New(opts)
	wait := cfg.Backoff
	var last error
	for attempt := 1; attempt <= cfg.Attempts; attempt++ {
		err := try(client)
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, ErrConfig) || errors.Is(err, ErrNoEvidence) {
			return err
		}
		if attempt == cfg.Attempts {
			break
		}
		d := wait/2 + rand.N(wait/2+1)
		cfg.Logger.Warn("instance metadata unavailable; retrying", "attempt", attempt, "of", cfg.Attempts, "in", d, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: gave up after %d attempts: %w (last error: %w)", ErrIMDS, attempt, ctx.Err(), err)
		case <-time.After(d):
		}
		wait = min(2*wait, cfg.MaxBackoff)
	}
	return fmt.Errorf("%w: gave up after %d attempts: %w", ErrIMDS, cfg.Attempts, last)
}

func fromIMDS(ctx context.Context, c *imds.Client, cfg Config) (Identity, error) {
	var id Identity
	required := []struct {
		path string
		dst  *string
	}{
		{"instance-id", &id.InstanceID},
		{"local-ipv4", &id.PrivateIP},
		{"placement/availability-zone", &id.AvailabilityZone},
		{"ami-id", &id.ImageID},
	}
	for _, r := range required {
		v, found, err := get(ctx, c, r.path)
		if err != nil {
			return Identity{}, err
		}
		if !found || v == "" {
			return Identity{}, fmt.Errorf("%w: %s: not found", ErrIMDS, r.path)
		}
		*r.dst = v
	}
	asg, found, err := get(ctx, c, "tags/instance/"+TagASG)
	if err != nil {
		return Identity{}, err
	}
	id.ASG = asg
	id.Fleet = cfg.Fleet
	if !found && cfg.Fleet == "" {
		return Identity{}, fmt.Errorf("%w: no fleet: instance %s has no %s tag (not in a group, or instance metadata tags disabled) and no fleet was given", ErrConfig, id.InstanceID, TagASG)
	}
	id.Coordinators = cfg.Coordinators
	if len(id.Coordinators) == 0 {
		v, found, err := get(ctx, c, "tags/instance/"+TagCoordinators)
		if err != nil {
			return Identity{}, err
		}
		id.Coordinators = SplitAddrs(v)
		if !found || len(id.Coordinators) == 0 {
			return Identity{}, fmt.Errorf("%w: no coordinators: instance %s has no %s tag and no coordinator address was given", ErrConfig, id.InstanceID, TagCoordinators)
		}
	}
	return id, nil
}

// get reads one meta-data path; found is false on 404.
func get(ctx context.Context, c *imds.Client, path string) (string, bool, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return "", false, nil
		}
		return "", false, fmt.Errorf("%w: %s: %w", ErrIMDS, path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 64<<10))
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrIMDS, path, err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// SplitAddrs splits a comma-separated address list, dropping blanks.
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// NewClient returns an IMDSv2 client for endpoint ("" for the SDK's default)
// without the SDK's retries: callers that poll (notice watching) retry on
// their own schedule. The client fetches and refreshes its session token
// itself.
func NewClient(endpoint string, hc *http.Client) *imds.Client {
	opts := imds.Options{Endpoint: endpoint, Retryer: aws.NopRetryer{}}
	if hc != nil {
		opts.HTTPClient = hc
	}
	return imds.New(opts)
}

// Get reads one meta-data path; found is false when IMDS answers 404, which
// is how it says "no such notice".
func Get(ctx context.Context, c *imds.Client, path string) (value string, found bool, err error) {
	return get(ctx, c, path)
}

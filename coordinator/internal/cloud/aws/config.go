package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// Config says how Shoal talks to AWS. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// Region overrides the region from the environment/shared config.
	Region string
	// Endpoint overrides AWS_ENDPOINT_URL for every service (tests).
	Endpoint string
	// MaxAttempts is the number of attempts per call, first included.
	MaxAttempts int
	// MaxBackoff caps the jittered exponential delay between attempts.
	// Throttling backs off from 1 s, other errors from BaseDelay.
	MaxBackoff time.Duration
	BaseDelay  time.Duration
	// Limiter paces every attempt of every call. Pass the same limiter to
	// every package that calls AWS so the whole cluster shares one budget;
	// nil makes one from RatePerSecond and Burst.
	Limiter       *rate.Limiter
	RatePerSecond float64
	Burst         int
}

// DefaultConfig returns the production settings: 5 attempts, backoff up to 5 s
// (the scaler runs every second, so a longer wait would only delay a decision
// that a fresh evaluation would make anyway), and 10 calls/s with a burst of
// 20, well under Auto Scaling's and CloudWatch's account-wide rates.
func DefaultConfig() Config {
	return Config{
		MaxAttempts:   5,
		MaxBackoff:    5 * time.Second,
		BaseDelay:     50 * time.Millisecond,
		RatePerSecond: 10,
		Burst:         20,
	}
}

// Validate reports the first field that is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.MaxAttempts < 1:
		return fmt.Errorf("max attempts (%d) must be >= 1", c.MaxAttempts)
	case c.MaxBackoff <= 0:
		return fmt.Errorf("max backoff (%v) must be > 0", c.MaxBackoff)
	case c.BaseDelay <= 0:
		return fmt.Errorf("base delay (%v) must be > 0", c.BaseDelay)
	case c.BaseDelay > c.MaxBackoff:
		return fmt.Errorf("base delay (%v) must be <= max backoff (%v)", c.BaseDelay, c.MaxBackoff)
	case c.Limiter == nil && c.RatePerSecond <= 0:
		return fmt.Errorf("rate per second (%v) must be > 0", c.RatePerSecond)
	case c.Limiter == nil && c.Burst < 1:
		return fmt.Errorf("burst (%d) must be >= 1", c.Burst)
	}
	return nil
}

// NewLimiter returns the limiter Config describes.
func (c Config) NewLimiter() *rate.Limiter {
	if c.Limiter != nil {
		return c.Limiter
	}
	return rate.NewLimiter(rate.Limit(c.RatePerSecond), c.Burst)
}

// ErrRateLimited is returned when the context ends while a call waits for
// the shared rate limiter.
var ErrRateLimited = errors.New("waiting for the shared AWS rate limiter")

// LoadConfig returns the aws.Config all of Shoal's AWS clients are built
// from: LoadDefaultConfig (environment, shared config, AWS_ENDPOINT_URL) plus
// the standard retryer tuned by c, the shared limiter on every attempt, and
// the leadership term header on every call made under a term.
func LoadConfig(ctx context.Context, c Config) (sdkaws.Config, error) {
	if err := c.Validate(); err != nil {
		return sdkaws.Config{}, err
	}
	lim := c.NewLimiter()
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() sdkaws.Retryer { return newRetryer(c) }),
		config.WithAPIOptions([]func(*middleware.Stack) error{LimiterMiddleware(lim), TermMiddleware()}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(c.Endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return sdkaws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return sdkaws.Config{}, errors.New("region: not set (set AWS_REGION or the config's Region)")
	}
	return cfg, nil
}

// newRetryer is the SDK's standard retryer: it already retries throttling,
// 5xx, connection errors and timeouts with exponential backoff and full
// jitter, so Shoal only adds the two Auto Scaling codes that mean "busy, try
// again" and turns off the SDK's client-side retry quota: every attempt
// already waits on the shared limiter, and a quota that refuses retries
// after a burst of throttling would fail scaling calls the limiter would have
// paced through.
func newRetryer(c Config) sdkaws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = c.MaxAttempts
		o.MaxBackoff = c.MaxBackoff
		o.BaseDelay = c.BaseDelay
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{
			"ScalingActivityInProgress": {},
			"ResourceContention":        {},
		}})
	})
}

// LimiterMiddleware makes every attempt wait on lim. It sits right after the
// retry middleware, so retries pay for their tokens too, and before signing,
// so a long wait does not age the signature.
func LimiterMiddleware(lim *rate.Limiter) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		mw := middleware.FinalizeMiddlewareFunc("ShoalRateLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if err := lim.Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%w: %w", ErrRateLimited, err)
				}
				return next.HandleFinalize(ctx, in)
			})
		if _, ok := s.Finalize.Get("Retry"); ok {
			return s.Finalize.Insert(mw, "Retry", middleware.After)
		}
		return s.Finalize.Add(mw, middleware.After)
	}
}

package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// interruptConfig is what `interrupt` sends to a running local cloud.
type interruptConfig struct {
	Endpoint       string
	Instance       string
	In             time.Duration
	RebalanceFirst time.Duration
	RebalanceOnly  bool
	Timeout        time.Duration
}

func defaultInterruptConfig() interruptConfig {
	return interruptConfig{Endpoint: "http://127.0.0.1:4566", In: 2 * time.Minute, Timeout: 10 * time.Second}
}

// Validate names the flag that is wrong and why; it changes nothing. The
// local cloud checks the same bounds again: this only fails faster.
func (c interruptConfig) Validate() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("endpoint (%q) must be the local cloud's URL, e.g. http://127.0.0.1:4566", c.Endpoint)
	case !strings.HasPrefix(c.Instance, "i-"):
		return fmt.Errorf("instance (%q) is required and must be an instance id (i-...)", c.Instance)
	case !c.RebalanceOnly && (c.In < time.Second || c.In > 6*time.Hour):
		return fmt.Errorf("in (%s) must be between 1s and 6h", c.In)
	case c.RebalanceFirst < 0 || c.RebalanceFirst > 6*time.Hour:
		return fmt.Errorf("rebalance-first (%s) must be between 0s and 6h", c.RebalanceFirst)
	case c.RebalanceOnly && c.RebalanceFirst != 0:
		return fmt.Errorf("rebalance-first (%s) makes no sense with rebalance-only: the recommendation is sent now", c.RebalanceFirst)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout (%s) must be > 0", c.Timeout)
	}
	return nil
}

func newInterruptCmd() *cobra.Command {
	cfg := defaultInterruptConfig()
	cmd := &cobra.Command{
		Use:   "interrupt",
		Short: "Send a Spot interruption (or only a rebalance recommendation) to an instance of a running local cloud",
		Long: `interrupt does what AWS FIS's aws:ec2:send-spot-instance-interruptions does,
against a running local cloud (POST <endpoint>/_localcloud/interrupt): a rebalance
recommendation now, the interruption notice --rebalance-first later (at once by
default), and termination (Server.SpotInstanceTermination) --in after the notice.
Each shows in the instance's metadata and as an EventBridge-shaped event in
GET <endpoint>/_localcloud/events. Durations are on the local cloud's clock.
It prints the schedule as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			return sendInterrupt(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Endpoint, "endpoint", cfg.Endpoint, "URL of the running local cloud (serve's --addr)")
	f.StringVar(&cfg.Instance, "instance", cfg.Instance, "id of the instance to interrupt")
	f.DurationVar(&cfg.In, "in", cfg.In, "time from the interruption notice to termination")
	f.DurationVar(&cfg.RebalanceFirst, "rebalance-first", cfg.RebalanceFirst, "send the rebalance recommendation this long before the notice (0: with it)")
	f.BoolVar(&cfg.RebalanceOnly, "rebalance-only", cfg.RebalanceOnly, "send only a rebalance recommendation, now: no notice, no termination")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the request to the local cloud")
	return cmd
}

func sendInterrupt(ctx context.Context, cfg interruptConfig, out io.Writer) error {
	q := url.Values{"instance": {cfg.Instance}}
	if cfg.RebalanceOnly {
		q.Set("rebalance-only", "true")
	} else {
		q.Set("in", cfg.In.String())
		q.Set("rebalance-first", cfg.RebalanceFirst.String())
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.Endpoint, "/")+"/_localcloud/interrupt?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("local cloud at %s: %w", cfg.Endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("local cloud at %s: %w", cfg.Endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("local cloud at %s refused the interruption: %s %s", cfg.Endpoint, resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = out.Write(body)
	return err
}

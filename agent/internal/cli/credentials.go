package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/agent/internal/enroll"
	"github.com/shoal-dev/shoal/agent/internal/identity"
	"github.com/shoal-dev/shoal/agent/internal/trust"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// creds is how the agent reaches its coordinators: the dial options of
// every connection and, when it has one, the loop that keeps its
// certificate fresh.
type creds struct {
	dial []grpc.DialOption
	run  func(context.Context) error
}

// credWatch is how often a hand-issued --cert/--key is checked for changes.
const credWatch = 30 * time.Second

// credentials enrolls (or loads the stored certificate) and returns the
// dial options, per the flags: --insecure (plaintext), --cert/--key (hand
// issued, with --instance-id) or enrollment with the identity document.
func credentials(ctx context.Context, o options, icfg identity.Config, id identity.Identity, reg prometheus.Registerer, log *slog.Logger) (creds, error) {
	var local netip.Addr
	if o.bindPrivateIP && id.PrivateIP != "" {
		ip, err := netip.ParseAddr(id.PrivateIP)
		if err != nil {
			return creds{}, fmt.Errorf("private IP %q from instance metadata: %w", id.PrivateIP, err)
		}
		local = ip
	}
	if o.bindPrivateIP && !local.IsValid() {
		log.Info("coordinator connections not bound to a private IP: none is known (--instance-id)")
	}
	switch {
	case o.insecure:
		log.Warn("INSECURE: --insecure talks plaintext to coordinators, with no certificate and no enrollment; anyone on the network can read and forge this agent's stream. Development only.")
		return creds{dial: []grpc.DialOption{trust.BindDialer(local)}}, nil
	case o.certFile != "":
		src, err := tlsconf.NewSource(tlsconf.Config{CAFile: o.trust.CAFile, CertFile: o.certFile, KeyFile: o.keyFile, Cluster: o.trust.Cluster})
		if err != nil {
			return creds{}, err
		}
		if own, _ := src.Identity(); own.Role != tlsconf.RoleAgent || own.Name != id.InstanceID {
			return creds{}, fmt.Errorf("%w: --cert is %s, not an agent certificate for --instance-id %s", ErrFlags, own, id.InstanceID)
		}
		log.Warn("using a hand-issued agent certificate (development); it is reloaded when the files change but never renewed", "cert", o.certFile)
		return creds{
			dial: []grpc.DialOption{tlsconf.DialOption(tlsconf.ClientConfig(src)), trust.BindDialer(local)},
			run: func(ctx context.Context) error {
				src.Watch(ctx, credWatch, func(err error) {
					if err != nil {
						log.Error("reloading --cert/--key", "err", err)
					} else {
						log.Info("reloaded --cert/--key")
					}
				})
				return nil
			},
		}, nil
	}
	store, err := enroll.OpenStore(o.dataDir)
	if err != nil {
		return creds{}, err
	}
	tcfg := o.trust
	tcfg.Addrs, tcfg.LocalIP, tcfg.Logger, tcfg.Metrics = id.Coordinators, local, log, trust.NewMetrics(reg)
	cl, err := trust.New(tcfg, store, id.InstanceID, func(ctx context.Context) (identity.Evidence, error) {
		return identity.FetchEvidence(ctx, icfg)
	})
	if err != nil {
		return creds{}, err
	}
	if err := cl.Start(ctx); err != nil {
		return creds{}, err
	}
	return creds{dial: cl.DialOptions(), run: cl.Run}, nil
}

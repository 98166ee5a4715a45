package node

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/enroll"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// agentEnroller is the enrollment half of AgentService.
type agentEnroller interface {
	Enroll(context.Context, *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error)
	RenewCertificate(context.Context, *shoalv1.RenewCertificateRequest) (*shoalv1.RenewCertificateResponse, error)
}

// agentService is AgentService: ingest's metric stream and enrollment.
// The enroller's methods, one level up, win over ingest's embedded
// Unimplemented ones.
type agentService struct {
	*ingest.Service
	agentEnroller
}

// noEnroll answers enrollment calls on a node that cannot issue agent
// certificates, with what to change.
type noEnroll struct{ why string }

func (e noEnroll) Enroll(context.Context, *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "enrollment is off on this node: "+e.why)
}

func (e noEnroll) RenewCertificate(context.Context, *shoalv1.RenewCertificateRequest) (*shoalv1.RenewCertificateResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "certificate renewal is off on this node: "+e.why)
}

// denied is the one shoal_auth_denied_total vector, shared by the
// authorizer and enrollment, registered on first use.
func (n *Node) denied(reg prometheus.Registerer) *prometheus.CounterVec {
	if n.deniedVec == nil {
		n.deniedVec = enroll.NewDeniedCounter()
		reg.MustRegister(n.deniedVec)
	}
	return n.deniedVec
}

// buildEnroll makes the verifier and issuer of agent enrollment, or a
// noEnroll that says why there is none.
func (n *Node) buildEnroll(ctx context.Context, sdkCfg *sdkaws.Config, reg prometheus.Registerer) (agentEnroller, error) {
	sec := n.cfg.Security
	switch {
	case sec.Insecure:
		return noEnroll{why: "the coordinator runs with --insecure"}, nil
	case !sec.enrolling():
		return noEnroll{why: "start serve with --iid-trust and --ca-key, or issue the agent a certificate by hand (`tls cert create --role agent`)"}, nil
	}
	ec := sec.Enroll
	if ec.Region == "" {
		ec.Region = sdkCfg.Region
	}
	trust, err := enroll.LoadTrust(ec.TrustFiles)
	if err != nil {
		return nil, err
	}
	accounts, err := enroll.ResolveAccounts(ctx, ec.Accounts, sts.NewFromConfig(*sdkCfg))
	if err != nil {
		return nil, fmt.Errorf("iid-accounts: %w", err)
	}
	lookup, err := enroll.NewBatchLookup(autoscaling.NewFromConfig(*sdkCfg), ec.Lookup)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "shoal_enroll_aws_calls_total",
		Help:        "AWS calls enrollment made to check instances (batched and cached).",
		ConstLabels: prometheus.Labels{"operation": enroll.OpDescribeAutoScalingInstances},
	}, func() float64 { return float64(lookup.Calls()) }))
	v, err := enroll.NewVerifier(ec, enroll.Deps{
		Trust: trust, Accounts: accounts, Lookup: lookup, State: enroll.FSMState{FSM: n.raft.FSM()}, Denied: n.denied(reg),
	})
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(sec.TLS.CAFile, sec.CAKeyFile)
	if err != nil {
		return nil, err
	}
	iss, err := enroll.NewIssuer(ca, ec.AgentCertTTL, time.Now)
	if err != nil {
		return nil, err
	}
	bundle, err := os.ReadFile(sec.TLS.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca-cert: %w", err)
	}
	n.log.Info("node: agent enrollment on", "region", ec.Region, "accounts", accounts, "trusted_regions", trust.Regions(), "agent_cert_ttl", ec.AgentCertTTL)
	return newEnrollService(v, iss, bundle, n.commit, n.denied(reg), n.log.With("component", "enroll"))
}

// commit applies cmd through raft (forwarded to the leader from a
// follower) and turns the FSM's refusal into an error.
func (n *Node) commit(ctx context.Context, cmd []byte) error {
	r, _, err := n.raft.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	return r.Error()
}

// runSecurity keeps the TLS files fresh (file watch and SIGHUP) and, with
// --insecure, repeats the warning until ctx ends.
func (n *Node) runSecurity(ctx context.Context) {
	sec := n.cfg.Security
	if sec.Insecure {
		warn := func() {
			n.log.Warn("node: INSECURE: --insecure is on: no TLS, no client identities, no ACL tokens; anyone who reaches a port controls this cluster; development only")
		}
		warn()
		t := time.NewTicker(sec.InsecureWarnEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				warn()
			}
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	hup := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case hup <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	n.tls.watch(ctx, sec.ReloadEvery, hup, func(err error) {
		if err != nil {
			n.log.Error("node: TLS files not reloaded; the previous certificate stays in use", "err", err)
			return
		}
		id, _ := n.tls.src.Identity()
		n.log.Info("node: TLS files reloaded", "identity", id.String())
	})
}

// stopGRPC stops s gracefully within timeout, then hard.
func stopGRPC(s *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.Stop()
	}
}

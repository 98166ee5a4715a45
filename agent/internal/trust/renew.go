package trust

import (
	"context"
	"encoding/pem"
	"fmt"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/agent/internal/enroll"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Run renews the certificate at two thirds of its life, over a mutual-TLS
// connection made with the current certificate, until ctx ends. A failed
// renewal is retried every RenewRetry; a certificate that expires meanwhile
// is replaced by enrolling again with the stored nonce. Run returns ctx's
// error, or an enrollment's that gave up.
func (c *Client) Run(ctx context.Context) error {
	var conn *grpc.ClientConn
	next := 0
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	c.cfg.Metrics.expires(certificateOf(c.src))
	for {
		leaf := certificateOf(c.src)
		now := c.cfg.Now()
		if !now.Before(leaf.NotAfter) {
			c.cfg.Logger.Warn("agent certificate expired before it could be renewed; enrolling again", "expired", leaf.NotAfter)
			st, err := c.store.Load()
			if err != nil {
				return err
			}
			if err := c.enroll(ctx, st.Nonce); err != nil {
				return err
			}
			if err := c.src.Reload(); err != nil {
				return fmt.Errorf("data-dir: enrolled credentials: %w", err)
			}
			continue
		}
		at := enroll.RenewAt(leaf, now)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.cfg.After(at.Sub(now)):
		}
		if conn == nil {
			var err error
			// A connection of the current certificate: TLS configs read it
			// at each handshake, so a reconnect uses the renewed one.
			if conn, err = rpc.Dial(c.cfg.Addrs[next%len(c.cfg.Addrs)], c.DialOptions()...); err != nil {
				return err
			}
		}
		if err := c.renew(ctx, conn); err != nil {
			c.cfg.Metrics.renewed(resultOf(err))
			c.cfg.Logger.Warn("certificate renewal failed; retrying", "coordinator", conn.Target(), "err", err, "retry_in", c.cfg.RenewRetry)
			conn.Close()
			conn, next = nil, next+1
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.cfg.After(c.cfg.RenewRetry):
			}
			continue
		}
		c.cfg.Metrics.renewed(resultSuccess)
		c.cfg.Metrics.expires(certificateOf(c.src))
		c.cfg.Logger.Info("certificate renewed", "instance", c.instance, "expires", certificateOf(c.src).NotAfter)
	}
}

// renew asks for a certificate for a fresh key, stores it and reloads the
// Source. The stored nonce is kept: it is the instance's, not the key's.
func (c *Client) renew(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := c.store.Load()
	if err != nil {
		return err
	}
	req, err := enroll.NewRequest(c.instance, st.Nonce)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	resp, err := shoalv1.NewAgentServiceClient(conn).RenewCertificate(cctx, &shoalv1.RenewCertificateRequest{
		Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR}),
	})
	if err != nil {
		return err
	}
	chain, err := c.check(resp.GetCertificateChain())
	if err != nil {
		return err
	}
	if err := c.store.Save(enroll.State{Key: req.Key, Chain: chain, Nonce: st.Nonce}); err != nil {
		return err
	}
	return c.src.Reload()
}

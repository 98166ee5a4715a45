package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
	"github.com/shoal-dev/shoal/proto/rpc"
)

func dialTest(t *testing.T, addr string) testpb.TestServiceClient {
	t.Helper()
	cc, err := rpc.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func TestGRPCOneConnectionSpreadsPerRequest(t *testing.T) {
	bs := startBackends(t, 3)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	const streams, perStream = 64, 50
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, streams)
	for range streams {
		wg.Go(func() {
			for range perStream {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("x")}})
				cancel()
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				counts[resp.GetHostname()]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := streams * perStream
	for _, b := range bs {
		got := counts[b.Name]
		if want := float64(total) / 3; float64(got) < want*0.9 || float64(got) > want*1.1 {
			t.Errorf("backend %s served %d of %d calls, want %.0f ±10%% (all: %v)", b.Name, got, total, want, counts)
		}
	}
}

func TestGRPCStreamingAndTrailersRoundTrip(t *testing.T) {
	bs := startBackends(t, 2)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("unary with header and trailer", func(t *testing.T) {
		var hdr, trl metadata.MD
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}}, grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(resp.GetPayload().GetBody()); got != "hello from "+resp.GetHostname()+": hi" {
			t.Fatalf("body %q", got)
		}
		if hdr.Get("x-shoal-instance")[0] != resp.GetHostname() || trl.Get("x-shoal-trailer")[0] != resp.GetHostname() {
			t.Fatalf("header %v trailer %v", hdr, trl)
		}
	})
	t.Run("status and message preserved", func(t *testing.T) {
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.PermissionDenied), Message: "nope: 100% sure"}})
		if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "nope: 100% sure" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("large message through flow control", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10) // 3.2 MB
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: big}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(resp.GetPayload().GetBody(), big) {
			t.Fatalf("payload corrupted: %d bytes back", len(resp.GetPayload().GetBody()))
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		var params []*testpb.ResponseParameters
		for i := range 20 {
			params = append(params, &testpb.ResponseParameters{Size: int32(1 + i*5000)})
		}
		st, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if len(m.GetPayload().GetBody()) != 1+i*5000 {
				t.Fatalf("message %d: %d bytes", i, len(m.GetPayload().GetBody()))
			}
		}
		if _, err := st.Recv(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		if st.Trailer().Get("x-shoal-trailer") == nil {
			t.Fatalf("trailer lost: %v", st.Trailer())
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		st, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range 50 {
			body := bytes.Repeat([]byte{'z'}, i*1000)
			want += len(body)
			if err := st.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: body}}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := st.CloseAndRecv()
		if err != nil {
			t.Fatal(err)
		}
		if int(resp.GetAggregatedPayloadSize()) != want {
			t.Fatalf("aggregated %d, want %d", resp.GetAggregatedPayloadSize(), want)
		}
	})
	t.Run("bidi streaming", func(t *testing.T) {
		st, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			msg := strings.Repeat(string(rune('a'+i%26)), 10+i)
			if err := st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
				t.Fatal(err)
			}
			m, err := st.Recv()
			if err != nil || string(m.GetPayload().GetBody()) != msg {
				t.Fatalf("echo %d: %v %q", i, err, m.GetPayload().GetBody())
			}
		}
		st.CloseSend()
		if _, err := st.Recv(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		if st.Trailer().Get("x-shoal-trailer") == nil {
			t.Fatalf("trailer lost: %v", st.Trailer())
		}
	})
}

func TestGRPCTimeoutHonoured(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1, IntervalUs: 5_000_000}}})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("deadline not honoured: %s", el)
	}
	eventually(t, 3*time.Second, "in-flight back to 0", func() bool { return p.Balancer().Active() == 0 })
}

func TestGRPCNoBackendSaysWhy(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	be := p.Balancer().Backends()[0]
	be.SetHealth(false, "connect refused "+be.Addr)
	p.Balancer().NoteError("connect refused " + be.Addr)
	c := dialTest(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	want := "no healthy backend for fleet web: 1 registered, 0 passed health checks (last: connect refused " + be.Addr + ")"
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != want {
		t.Fatalf("got %v\nwant Unavailable %q", err, want)
	}
}

func TestGRPCDrainUnderLoadLosesNothing(t *testing.T) {
	bs := startBackends(t, 3)
	p := startProxy(t, func(c *Config) { c.DrainPoll = 5 * time.Millisecond }, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []error
		calls  int
	)
	for range 16 {
		wg.Go(func() {
			for range 150 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
				cancel()
				mu.Lock()
				calls++
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		})
	}
	callsNow := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	eventually(t, 10*time.Second, "load to start", func() bool { return callsNow() > 200 })
	bal := p.Balancer()
	specs := []balance.Spec{{Addr: bs[0].grpcAddr, State: balance.Draining}, {Addr: bs[1].grpcAddr}, {Addr: bs[2].grpcAddr}}
	if err := bal.Update(2, specs); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "draining backend at zero in-flight", func() bool { return bal.Backends()[0].InFlight() == 0 })
	servedAtDrain, callsAtDrain := bs[0].Requests.Load(), callsNow()
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d calls failed during drain, first: %v", len(failed), failed[0])
	}
	if callsNow() < callsAtDrain+500 {
		t.Fatalf("too little load after the drain (%d calls) to show anything", callsNow()-callsAtDrain)
	}
	if got := bs[0].Requests.Load(); got != servedAtDrain {
		t.Fatalf("draining backend served %d calls after its drain completed", got-servedAtDrain)
	}
	up := upstream.Of(bal.Backends()[0])
	eventually(t, 5*time.Second, "drained backend at zero in-flight with connections closed", func() bool {
		return bal.Backends()[0].InFlight() == 0 && up.Conns() == 0
	})
}

func TestGRPCDrainDeadlineEndsStreamsUnavailable(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, func(c *Config) { c.DrainPoll = 5 * time.Millisecond }, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	if err := p.Balancer().Update(2, []balance.Spec{{Addr: bs[0].grpcAddr, State: balance.Draining, DrainDeadline: deadline}}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "drain deadline") {
		t.Fatalf("got %v, want Unavailable naming the drain deadline", err)
	}
	if time.Now().Before(deadline) {
		t.Fatal("stream ended before the drain deadline")
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		t.Fatalf("not a status error: %v", err)
	}
}

// Cancelled streams with output still queued in the proxy must give their
// flow-control credit back, or the shared connections starve.
func TestGRPCCancelledStreamsDoNotStarveConnections(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	for i := range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var params []*testpb.ResponseParameters
		for range 8 {
			params = append(params, &testpb.ResponseParameters{Size: 1 << 20})
		}
		st, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		cancel() // leaves megabytes in flight between backend, proxy and client
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("x"), 4<<20)
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: big}})
	if err != nil {
		t.Fatalf("connection starved after cancellations: %v", err)
	}
	if len(resp.GetPayload().GetBody()) < len(big) {
		t.Fatalf("short payload %d", len(resp.GetPayload().GetBody()))
	}
	eventually(t, 5*time.Second, "in-flight back to 0", func() bool { return p.Balancer().Active() == 0 })
}

func TestGRPCToTLSBackends(t *testing.T) {
	cert := selfSigned(t)
	b := benchbackend.New("tls0", grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.ServeGRPC(ln)
	t.Cleanup(b.Close)
	p := startProxy(t, func(c *Config) { c.BackendTLS = &tls.Config{InsecureSkipVerify: true} }, nil, ln.Addr().String())
	c := dialTest(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("s")}})
	if err != nil || resp.GetHostname() != "tls0" {
		t.Fatalf("%v %v", resp, err)
	}
}

// A backend dying under load fails at most the calls it had in flight (with
// UNAVAILABLE, never a hang), and every later call lands elsewhere.
func TestGRPCKilledBackendFailsOnlyItsInFlightCalls(t *testing.T) {
	bs := startBackends(t, 3)
	p := startProxy(t, nil, nil, grpcAddrs(bs)...)
	c := dialTest(t, p.addr)
	const workers = 16
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		killed    = make(chan struct{})
		afterFail []error
		atKill    []error
		calls     int
	)
	for range workers {
		wg.Go(func() {
			for range 120 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				startedAfterKill := false
				select {
				case <-killed:
					startedAfterKill = true
				default:
				}
				_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
				cancel()
				mu.Lock()
				calls++
				if err != nil {
					if startedAfterKill {
						afterFail = append(afterFail, err)
					} else {
						atKill = append(atKill, err)
					}
				}
				mu.Unlock()
			}
		})
	}
	eventually(t, 10*time.Second, "load to start", func() bool { mu.Lock(); defer mu.Unlock(); return calls > 200 })
	bs[1].Close()
	var up *upstream.Upstream
	for _, be := range p.Balancer().Backends() {
		if be.Addr == bs[1].grpcAddr {
			up = upstream.Of(be)
		}
	}
	// Calls racing the proxy's discovery of the dead connection may
	// fail; from then on none may.
	eventually(t, 5*time.Second, "proxy dropping the dead backend's connections", func() bool {
		return up.Mux.Conns() == 0
	})
	close(killed)
	wg.Wait()
	if len(atKill) > 2*workers {
		t.Fatalf("%d calls failed around the kill, more than twice the %d that can be in flight", len(atKill), workers)
	}
	for _, err := range atKill {
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call in flight at the kill ended with %v, want Unavailable", err)
		}
	}
	if len(afterFail) > 0 {
		t.Fatalf("%d calls started after the kill failed, first: %v", len(afterFail), afterFail[0])
	}
}

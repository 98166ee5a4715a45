package benchbackend

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/proto/rpc"
)

// InstanceHeader names the instance that answered.
const InstanceHeader = "X-Shoal-Instance"

// Backend serves HTTP and gRPC for one named instance.
type Backend struct {
	Name string
	// Delay, when set, is slept by every HTTP request (to hold requests
	// in flight in drain tests).
	Delay atomic.Int64
	// Fail, when set, makes every HTTP answer a 500.
	Fail atomic.Bool
	// Requests counts answered requests and calls.
	Requests atomic.Int64

	httpSrv *http.Server
	grpcSrv *grpc.Server
	Health  *health.Server
}

// New returns a backend named name; opts go to its gRPC server (tests add
// TLS credentials).
func New(name string, opts ...grpc.ServerOption) *Backend {
	b := &Backend{Name: name}
	body := []byte("hello from " + name + "\n")
	b.httpSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := time.Duration(b.Delay.Load()); d > 0 {
				time.Sleep(d)
			}
			if r.Header.Get("Upgrade") == "echo" {
				b.serveEcho(w)
				return
			}
			io.Copy(io.Discard, r.Body)
			b.Requests.Add(1)
			w.Header().Set(InstanceHeader, name)
			w.Header().Set("Content-Type", "text/plain")
			if b.Fail.Load() || r.URL.Path == "/status/500" {
				w.WriteHeader(http.StatusInternalServerError)
			}
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	b.grpcSrv = rpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(b.grpcSrv, &testService{b: b})
	b.Health = health.NewServer()
	healthpb.RegisterHealthServer(b.grpcSrv, b.Health)
	return b
}

// serveEcho switches to the "echo" protocol (a stand-in for WebSocket) and
// echoes every byte back.
func (b *Backend) serveEcho(w http.ResponseWriter) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	b.Requests.Add(1)
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n" + InstanceHeader + ": " + b.Name + "\r\n\r\n")
	brw.Flush()
	buf := make([]byte, 4096)
	for {
		n, err := brw.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// ServeHTTP serves the HTTP side on ln until Close.
func (b *Backend) ServeHTTP(ln net.Listener) error {
	err := b.httpSrv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeGRPC serves the gRPC side on ln until Close.
func (b *Backend) ServeGRPC(ln net.Listener) error { return b.grpcSrv.Serve(ln) }

// Close stops both servers at once.
func (b *Backend) Close() {
	b.httpSrv.Close()
	b.grpcSrv.Stop()
}

// GracefulStop lets calls in flight finish.
func (b *Backend) GracefulStop(ctx context.Context) {
	b.httpSrv.Shutdown(ctx)
	b.grpcSrv.GracefulStop()
}

type testService struct {
	testpb.UnimplementedTestServiceServer
	b *Backend
}

func (s *testService) hdr(ctx context.Context) {
	grpc.SetHeader(ctx, metadata.Pairs("x-shoal-instance", s.b.Name))
}

func (s *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	s.b.Requests.Add(1)
	s.hdr(ctx)
	return &testpb.Empty{}, nil
}

// UnaryCall greets: it echoes the payload after "hello from NAME: ", and
// answers with the requested status code when one is set.
func (s *testService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.b.Requests.Add(1)
	s.hdr(ctx)
	if st := in.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	grpc.SetTrailer(ctx, metadata.Pairs("x-shoal-trailer", s.b.Name))
	body := append([]byte("hello from "+s.b.Name+": "), in.GetPayload().GetBody()...)
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: body}, Hostname: s.b.Name}, nil
}

func (s *testService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	s.b.Requests.Add(1)
	s.hdr(st.Context())
	for i, p := range in.GetResponseParameters() {
		if d := p.GetIntervalUs(); d > 0 {
			select {
			case <-time.After(time.Duration(d) * time.Microsecond):
			case <-st.Context().Done():
				return st.Context().Err()
			}
		}
		body := make([]byte, p.GetSize())
		for j := range body {
			body[j] = byte('a' + (i+j)%26)
		}
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	st.SetTrailer(metadata.Pairs("x-shoal-trailer", s.b.Name))
	return nil
}

func (s *testService) StreamingInputCall(st grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	s.b.Requests.Add(1)
	s.hdr(st.Context())
	total := 0
	for {
		m, err := st.Recv()
		if err == io.EOF {
			st.SetTrailer(metadata.Pairs("x-shoal-trailer", s.b.Name))
			return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(m.GetPayload().GetBody())
	}
}

func (s *testService) FullDuplexCall(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	s.b.Requests.Add(1)
	s.hdr(st.Context())
	for {
		m, err := st.Recv()
		if err == io.EOF {
			st.SetTrailer(metadata.Pairs("x-shoal-trailer", s.b.Name))
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

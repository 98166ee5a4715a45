package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type fakeAPI struct {
	shoalv1.UnimplementedControlServiceServer
	paused int
}

func (f *fakeAPI) PauseFleet(context.Context, *shoalv1.PauseFleetRequest) (*shoalv1.PauseFleetResponse, error) {
	f.paused++
	return &shoalv1.PauseFleetResponse{}, nil
}

type fakeLocal struct{}

func (fakeLocal) NodeID() string   { return "n1" }
func (fakeLocal) IsLeader() bool   { return true }
func (fakeLocal) LeaderID() string { return "n1" }

// TestWriteNeedsTokenAndHeader: a write runs only with a token the
// authorizer accepts and the console's own header; every response has
// the CSP.
func TestWriteNeedsTokenAndHeader(t *testing.T) {
	api := &fakeAPI{}
	cfg := DefaultConfig()
	cfg.API, cfg.Local = api, fakeLocal{}
	cfg.Authorize = func(ctx context.Context, method, auth string) (context.Context, error) {
		if auth != "Bearer good" {
			return nil, status.Error(codes.Unauthenticated, "no token")
		}
		return ctx, nil
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, auth, hdr string
		want, paused    int
	}{
		{"no token", "", "1", http.StatusUnauthorized, 0},
		{"no header", "Bearer good", "", http.StatusForbidden, 0},
		{"both", "Bearer good", "1", http.StatusOK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/ui/api/v1/fleets/web/pause", strings.NewReader("{}"))
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.hdr != "" {
				r.Header.Set("X-Shoal-Console", tc.hdr)
			}
			w := httptest.NewRecorder()
			c.ServeHTTP(w, r)
			if w.Code != tc.want || api.paused != tc.paused {
				t.Errorf("status %d, paused %d; want %d, %d (%s)", w.Code, api.paused, tc.want, tc.paused, w.Body)
			}
			if w.Header().Get("Content-Security-Policy") != CSP {
				t.Errorf("CSP %q", w.Header().Get("Content-Security-Policy"))
			}
		})
	}
}

package view

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestTokenJSON(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tok := &shoalv1.Token{AccessorId: "ab12", Name: "ops-alice", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_OPERATE, CreateTime: timestamppb.New(created)}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"listed, never expires", TokensOf([]*shoalv1.Token{tok}), `[{"accessor_id":"ab12","name":"ops-alice","policy":"operate","created_at":"2025-03-01T12:00:00.000Z"}]`},
		{"none listed", TokensOf(nil), `[]`},
		{"new, with its secret", NewTokenOf(&shoalv1.Token{AccessorId: "cd34", Name: "ci", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ, CreateTime: timestamppb.New(created), ExpireTime: timestamppb.New(created.Add(time.Hour))}, "shoal_s"),
			`{"name":"ci","policy":"read","secret":"shoal_s","accessor_id":"cd34","created_at":"2025-03-01T12:00:00.000Z","expires_at":"2025-03-01T13:00:00.000Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Fatalf("JSON = %s (%v), want %s", b, err, tc.want)
			}
		})
	}
}

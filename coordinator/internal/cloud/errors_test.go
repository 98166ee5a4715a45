package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"nil", nil, ClassNone},
		{"throttled kind", &Error{Op: "autoscaling:SetDesiredCapacity", Code: "Throttling", Status: 400, Kind: ErrThrottled, Err: errors.New("rate exceeded")}, ClassRetryable},
		{"activity in progress", &Error{Code: "ScalingActivityInProgress", Status: 400, Kind: ErrScalingActivityInProgress, Err: errors.New("busy")}, ClassRetryable},
		{"insufficient capacity", &Error{Code: "InsufficientInstanceCapacity", Status: 500, Kind: ErrInsufficientCapacity, Err: errors.New("no")}, ClassRetryable},
		{"group not found is fatal despite nothing else", &Error{Code: "ValidationError", Status: 400, Kind: ErrGroupNotFound, Err: errors.New("x")}, ClassFatal},
		{"validation", &Error{Code: "ValidationError", Status: 400, Kind: ErrValidation, Err: errors.New("x")}, ClassFatal},
		{"access denied with a 5xx status stays fatal", &Error{Code: "AccessDenied", Status: 503, Kind: ErrAccessDenied, Err: errors.New("x")}, ClassFatal},
		{"unknown code, 500", &Error{Code: "Weird", Status: 500, Err: errors.New("x")}, ClassRetryable},
		{"unknown code, 502", &Error{Code: "", Status: 502, Err: errors.New("bad gateway")}, ClassRetryable},
		{"unknown code, 400", &Error{Code: "Weird", Status: 400, Err: errors.New("x")}, ClassFatal},
		{"no response, connection refused", &Error{Op: "ec2:RunInstances", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, ClassRetryable},
		{"no response, unknown error", &Error{Op: "ec2:RunInstances", Err: errors.New("serialize: bad input")}, ClassFatal},
		{"wrapped cloud error", fmt.Errorf("apply decision 7: %w", &Error{Status: 400, Kind: ErrThrottled, Err: errors.New("x")}), ClassRetryable},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), ClassRetryable},
		{"canceled", context.Canceled, ClassRetryable},
		{"unexpected EOF", io.ErrUnexpectedEOF, ClassRetryable},
		{"plain sentinel", ErrThrottled, ClassRetryable},
		{"plain error", errors.New("boom"), ClassFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorIsKindAndCause(t *testing.T) {
	cause := errors.New("AutoScalingGroup name not found")
	err := fmt.Errorf("scale web: %w", &Error{Op: "autoscaling:SetDesiredCapacity", Code: "ValidationError", Status: 400, Kind: ErrGroupNotFound, Err: cause})
	if !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("errors.Is(err, ErrGroupNotFound) = false")
	}
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(err, cause) = false")
	}
	if errors.Is(err, ErrInstanceNotFound) {
		t.Errorf("errors.Is(err, ErrInstanceNotFound) = true")
	}
	want := "autoscaling:SetDesiredCapacity (group not found): AutoScalingGroup name not found"
	var ce *Error
	if !errors.As(err, &ce) || ce.Error() != want {
		t.Errorf("Error() = %q, want %q", ce.Error(), want)
	}
}

func TestErrorClassProto(t *testing.T) {
	tests := []struct {
		name string
		in   ErrorClass
		want shoalv1.ErrorClass
	}{
		{"none", ClassNone, shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED},
		{"retryable", ClassRetryable, shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE},
		{"fatal", ClassFatal, shoalv1.ErrorClass_ERROR_CLASS_FATAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Proto(); got != tt.want {
				t.Errorf("Proto() = %v, want %v", got, tt.want)
			}
			if tt.in.String() != tt.name {
				t.Errorf("String() = %q, want %q", tt.in.String(), tt.name)
			}
		})
	}
}

func TestGroupScaleInBlockedBy(t *testing.T) {
	tests := []struct {
		name      string
		suspended []string
		want      []string
	}{
		{"nothing suspended", nil, nil},
		{"harmless process", []string{"AddToLoadBalancer", "AlarmNotification"}, nil},
		{"terminate and launch", []string{"Terminate", "ScheduledActions", "Launch"}, []string{"Launch", "Terminate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Group{SuspendedProcesses: tt.suspended}.ScaleInBlockedBy()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ScaleInBlockedBy() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGroupsByName(t *testing.T) {
	got := []Group{{Name: "web"}, {Name: "api"}}
	tests := []struct {
		name    string
		asked   []string
		wantErr string
	}{
		{"all found", []string{"web", "api"}, ""},
		{"two missing", []string{"web", "db", "cache"}, "group not found: db, cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := GroupsByName(tt.asked, got)
			if m["web"].Name != "web" {
				t.Errorf("index lacks web: %v", m)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrGroupNotFound)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

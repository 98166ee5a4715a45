package localcloud

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is an error as the AWS service returns it: a code the SDK turns
// into an error type, a message, and the HTTP status.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Sentinels for the state code; handlers match them with errors.As on
// *APIError, tests with errors.Is on these.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrValidation    = errors.New("validation")
)

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// validation is Auto Scaling's ValidationError.
func validation(format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, "ValidationError", format, args...)
}

func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusBadRequest && (len(e.Code) > 9 && e.Code[len(e.Code)-9:] == ".NotFound" || e.Code == "ResourceNotFound")
	case ErrAlreadyExists:
		return e.Code == "AlreadyExists" || e.Code == "InvalidLaunchTemplateName.AlreadyExistsException"
	case ErrValidation:
		return e.Code == "ValidationError"
	}
	return false
}

package aws

import (
	"errors"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// kindsByCode maps AWS error codes to Shoal's sentinels. Codes not here are
// classified by HTTP status (5xx retryable, the rest fatal).
var kindsByCode = map[string]error{
	// Throttling, as Auto Scaling, EC2 and CloudWatch spell it.
	"Throttling":               cloud.ErrThrottled,
	"ThrottlingException":      cloud.ErrThrottled,
	"RequestLimitExceeded":     cloud.ErrThrottled,
	"TooManyRequestsException": cloud.ErrThrottled,
	"RequestThrottled":         cloud.ErrThrottled,
	"EC2ThrottledException":    cloud.ErrThrottled,
	"PriorRequestNotComplete":  cloud.ErrThrottled,
	"SlowDown":                 cloud.ErrThrottled,

	"InternalFailure":    cloud.ErrUnavailable,
	"InternalError":      cloud.ErrUnavailable,
	"InternalFault":      cloud.ErrUnavailable,
	"ServiceUnavailable": cloud.ErrUnavailable,
	"Unavailable":        cloud.ErrUnavailable,
	"RequestTimeout":     cloud.ErrUnavailable,

	"ScalingActivityInProgress":    cloud.ErrScalingActivityInProgress,
	"ResourceContention":           cloud.ErrResourceContention,
	"InsufficientInstanceCapacity": cloud.ErrInsufficientCapacity,

	"AlreadyExists": cloud.ErrAlreadyExists,
	"InvalidLaunchTemplateName.AlreadyExistsException": cloud.ErrAlreadyExists,
	"InvalidAMIName.Duplicate":                         cloud.ErrAlreadyExists,

	"InvalidInstanceID.NotFound":                   cloud.ErrInstanceNotFound,
	"InvalidInstanceID.Malformed":                  cloud.ErrInstanceNotFound,
	"InvalidAMIID.NotFound":                        cloud.ErrNotFound,
	"InvalidSnapshot.NotFound":                     cloud.ErrNotFound,
	"InvalidSubnetID.NotFound":                     cloud.ErrNotFound,
	"InvalidLaunchTemplateName.NotFoundException":  cloud.ErrNotFound,
	"InvalidLaunchTemplateId.NotFound":             cloud.ErrNotFound,
	"InvalidLaunchTemplateId.VersionNotFound":      cloud.ErrNotFound,
	"ResourceNotFound":                             cloud.ErrNotFound,
	"ResourceNotFoundException":                    cloud.ErrNotFound,
	"InvalidLaunchTemplateName.MalformedException": cloud.ErrValidation,
	"InvalidParameterValue":                        cloud.ErrValidation,
	"InvalidParameterCombination":                  cloud.ErrValidation,
	"InvalidParameterValueException":               cloud.ErrValidation,
	"InvalidParameterCombinationException":         cloud.ErrValidation,
	"MissingParameter":                             cloud.ErrValidation,
	"MissingRequiredParameterException":            cloud.ErrValidation,
	"InvalidUserData.Malformed":                    cloud.ErrValidation,
	"IncorrectInstanceState":                       cloud.ErrValidation,
	"InvalidFormat":                                cloud.ErrValidation,
	"InvalidNextToken":                             cloud.ErrValidation,
	"LimitExceeded":                                cloud.ErrLimitExceeded,
	"LimitExceededFault":                           cloud.ErrLimitExceeded,
	"LimitExceededException":                       cloud.ErrLimitExceeded,
	"ResourceInUse":                                cloud.ErrResourceInUse,
	"AccessDenied":                                 cloud.ErrAccessDenied,
	"AccessDeniedException":                        cloud.ErrAccessDenied,
	"UnauthorizedOperation":                        cloud.ErrAccessDenied,
	"AuthFailure":                                  cloud.ErrAccessDenied,
	"InvalidClientTokenId":                         cloud.ErrAccessDenied,
	"ExpiredToken":                                 cloud.ErrAccessDenied,
	"SignatureDoesNotMatch":                        cloud.ErrAccessDenied,
	"OptInRequired":                                cloud.ErrAccessDenied,
	"ServiceLinkedRoleFailure":                     cloud.ErrAccessDenied,
	"InvalidLaunchTemplateName.NotFound":           cloud.ErrNotFound,
	"InvalidLaunchTemplateId.Malformed":            cloud.ErrValidation,
	"InvalidSubnetID.Malformed":                    cloud.ErrValidation,
	"InvalidAMIID.Malformed":                       cloud.ErrValidation,
	"InvalidAMIID.Unavailable":                     cloud.ErrValidation,
	"InstanceLimitExceeded":                        cloud.ErrLimitExceeded,
	"VcpuLimitExceeded":                            cloud.ErrLimitExceeded,
	"InsufficientFreeAddressesInSubnet":            cloud.ErrInsufficientCapacity,
}

// validationKinds refines Auto Scaling's catch-all ValidationError by its
// message, which is all Auto Scaling gives to tell "no such group" from a
// bad argument.
var validationKinds = []struct {
	contains string
	kind     error
}{
	{"AutoScalingGroup name not found", cloud.ErrGroupNotFound},
	{"Group not found", cloud.ErrGroupNotFound},
	{"Instance Id not found", cloud.ErrInstanceNotFound},
	{"No managed instance found", cloud.ErrInstanceNotFound},
	{"is not part of Auto Scaling group", cloud.ErrInstanceNotFound},
	{"No active Lifecycle Action found", cloud.ErrLifecycleActionNotFound},
	{"No Lifecycle Hook found", cloud.ErrNotFound},
	{"does not exist", cloud.ErrNotFound},
}

// Translate wraps an SDK error into a *cloud.Error for op, with the kind and
// status the scaler classifies by. Every Shoal package that calls AWS uses it,
// so CloudWatch errors classify like Auto Scaling ones.
func Translate(op string, err error) error {
	if err == nil {
		return nil
	}
	ce := &cloud.Error{Op: op, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		ce.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ce.Code = ae.ErrorCode()
		ce.Kind = kindOf(ce.Code, ae.ErrorMessage())
	}
	if ce.Kind == nil && errors.Is(err, ErrRateLimited) {
		ce.Kind = cloud.ErrThrottled
	}
	return ce
}

func kindOf(code, msg string) error {
	if code == "ValidationError" {
		for _, v := range validationKinds {
			if strings.Contains(msg, v.contains) {
				return v.kind
			}
		}
		return cloud.ErrValidation
	}
	return kindsByCode[code]
}

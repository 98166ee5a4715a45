// Package aws implements cloud.Cloud on aws-sdk-go-v2 (Auto Scaling and EC2)
// and builds the aws.Config every Shoal AWS client shares: clients come from
// config.LoadDefaultConfig, so AWS_ENDPOINT_URL points them at
// shoal-localcloud; throttling and 5xx are retried by the SDK's standard
// retryer with exponential backoff and full jitter; and every attempt of every
// call, retries included, first waits on one shared rate limiter, so a
// cluster never spends more than its AWS API budget.
//
// It must never take a scaling decision or retry an operation the SDK gave up
// on: it reports what happened, classified, and the scaler decides. It must
// never call an operation missing from Operations(): ScalingOperations() are
// the coordinator role's, and the operator role's are listed by
// cli.BootstrapAWSOperations; deploy/check compares both to the IAM policies.
package aws

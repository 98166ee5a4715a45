// Package identity finds out which instance the agent runs on: from IMDSv2
// (through aws-sdk-go-v2's feature/ec2/imds, which honours
// AWS_EC2_METADATA_SERVICE_ENDPOINT) or, off EC2, from explicit flags.
//
// It must never invent an identity: when IMDS cannot be read after its
// retries, the agent gets an error that names what is missing, not a guess.
package identity

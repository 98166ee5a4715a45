// Package localcloud is shoal-localcloud: an AWS-compatible emulator that
// speaks the real wire protocols AWS clients send for Auto Scaling
// (awsQuery), EC2 (ec2query), CloudWatch (Smithy RPC v2 CBOR from
// aws-sdk-go-v2, JSON 1.0 from botocore, awsQuery from older clients) and
// STS GetCallerIdentity (awsQuery), and turns EC2 instances into local
// process groups with their own loopback address and IMDSv2 endpoint. Each
// instance's identity document is signed as EC2 signs it (iid.go), with an
// RSA key made at start whose certificate --iid-cert-out writes. CloudWatch has one implementation per
// operation (cwapi.go); each protocol only decodes into and encodes from
// its Go structs (cwcodec.go, cwcbor.go, cwjson.go, cwquery.go). Scaling
// policies (policies.go) keep only the API and the alarms target tracking
// owns; what an invoked policy does to a group is deploy/awsmodel's, the
// rules the simulator runs too. Spot interruptions and rebalance
// recommendations (spot.go) are injected as AWS FIS injects them and show in
// IMDS and in an EventBridge-shaped event log (events.go); Capacity
// Rebalancing and warm pools (warmpool.go) follow AWS's documented behaviour.
//
// It is a test and demo double. It must never be used to talk to real AWS:
// it accepts any credentials, checks only the shape of SigV4 signatures, and
// must never forward, proxy or sign anything towards an AWS endpoint. It also
// never runs an instance process without the parent-death signal, so killing
// the local cloud never leaves a workload behind.
package localcloud

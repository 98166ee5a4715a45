// Package enroll is the coordinator's side of agent enrollment: an instance
// proves who it is with its EC2 instance identity document and the
// document's RSA-SHA256 signature, and gets an agent certificate naming its
// instance id.
//
// Verify checks the signature over exactly the bytes received, before the
// JSON is parsed, against the trusted certificates of the document's region
// (--iid-trust); then the account (--iid-accounts, by default the
// coordinator's own via STS), the region, that the instance is pending or
// running in an Auto Scaling group a fleet drives (DescribeAutoScalingInstances,
// batched and cached by BatchLookup), that the document's privateIp is the
// connection's peer address, and the trust-on-first-use record in raft
// (fsm.EnrollmentAllowed). Every refusal carries a Reason, counted in
// shoal_auth_denied_total{reason}.
//
// Service is the gRPC adapter of Enroll and RenewCertificate; it commits
// through the write path the node gives it, and hands out a certificate
// only once the enrollment is recorded.
//
// Verify and Issuer must never commit anything themselves nor choose an identity from what the
// agent asks for: the caller commits fsm.IdentityEnroll for a verified
// Enrollment, and the certificate's name comes from the verified document
// only, never from the CSR.
package enroll

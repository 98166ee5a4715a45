// Package authz decides, for every gRPC call a coordinator serves, whether
// the caller may make it: from the full method name, the role in the
// caller's verified client certificate, and, for the control and ACL
// services, the operator's ACL token.
//
// Cluster RPCs take server certificates only; agent RPCs agent
// certificates (Enroll none); WatchBackends LB certificates; control and
// ACL RPCs an operator certificate and a token whose policy covers the
// method's level (acl.Level). A server certificate is trusted for every
// method, and only a server may say on whose behalf it forwards a call
// (ForwardContext); the same metadata from anyone else is ignored. An
// unknown method is denied to everyone. The verified Caller travels in the
// context (CallerFrom).
//
// It must never trust metadata from a peer that is not a server, never log
// or keep a token's secret, and never read the wall clock directly (the
// clock is injected so expiry is testable).
package authz

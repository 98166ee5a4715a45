// Package apierr is the coordinator API's error contract beyond the gRPC
// code: a google.rpc.ErrorInfo reason, in Domain, for every failure whose
// code alone would leave a client guessing. FAILED_PRECONDITION, for one,
// means both "this node is not the leader" (safe to send elsewhere) and "the
// state forbids this change" (never worth repeating); only the reason tells
// them apart. The server sets reasons; the cluster's forwarding and the CLI
// read them.
//
// It must never decide from an error's text, and never add a reason whose
// meaning a client cannot act on.
package apierr

// Package coordtls holds shoal-lb's credentials for its coordinator
// connection (BackendService.WatchBackends): the CA bundle and the LB's own
// certificate, which must have role lb, kept fresh from disk on SIGHUP and
// on a timer without a restart. With Insecure it holds nothing, dials
// plaintext, and says so loudly at start and every minute.
//
// It never dials or listens itself and never touches the proxy's own
// listener or backend TLS (--tls-cert, --backend-ca): those are the proxy's.
package coordtls

package balance

// MaxRetries bounds the replays after the first try (Stale and Replay):
// tries the backend may have seen.
const MaxRetries = 2

// MaxUnsentRetries bounds the retries after connect failures. They cost the
// backends nothing, and each goes to a backend this request has not failed
// on: during a scale-in an LB may still hold several terminated backends
// (until its next set arrives), and a request must get past all of them to
// a live one rather than fail on the third dead pick.
const MaxUnsentRetries = 4

// Retry says whether a failed try may be replayed, and at what cost.
type Retry int

const (
	// NoRetry: the backend may have processed the request.
	NoRetry Retry = iota
	// Unsent: nothing reached the backend (connect failed). Replaying on
	// another backend adds no load a budget would have to protect.
	Unsent
	// Stale: a pooled connection turned out closed by the backend before
	// it read the request (a keep-alive race, not a backend failure). The
	// replay goes on a fresh connection, to the same backend if it is the
	// only one, and is free.
	Stale
	// Replay: the request was sent but is safe to send again (idempotent,
	// no body consumed); the replay draws on the retry budget.
	Replay
)

// Attempt is one request's walk through pick, retry and retry budget. Every
// engine drives its tries with one, so the rules live here only:
//
//	a := bal.Attempt()
//	defer a.Close()
//	for {
//		be, err := a.Pick()
//		if err != nil { ... a.Tried(), a.Last() ... }
//		... one try ...
//		if ok { bal.Done(be, outcome); break }
//		if !a.Failed(be, outcome, kind) { ... answer a.Last() ... }
//	}
type Attempt struct {
	b *Balancer
	// failed are the backends this request failed on, skipped by later
	// picks; it has room for every try the limits allow.
	failed  [1 + MaxRetries + MaxUnsentRetries]*Backend
	nfailed int
	replays int  // Stale and Replay retries so far
	unsent  int  // connect-failure retries so far
	retried bool // holds a budgeted retry, returned by Close
	fresh   bool // after Stale: the backend it hit may be picked again
	last    string
}

// Attempt starts a request's tries.
func (b *Balancer) Attempt() Attempt { return Attempt{b: b} }

// Pick returns the backend for the next try. Its error is the balancer's
// (no backend at all); after failed tries Tried reports true and Last says
// what failed, which is the better answer for the client.
func (a *Attempt) Pick() (*Backend, error) {
	be, err := a.b.Pick(a.failed[:a.nfailed])
	if err != nil && a.fresh {
		// A stale pooled connection is no fault of its backend: with no
		// other left, go back to it on a fresh connection.
		be, err = a.b.Pick(a.failed[:a.nfailed-1])
	}
	a.fresh = false
	return be, err
}

// Failed records a failed try on be (calling Done with o) and reports
// whether to try again. o.Err, with the fleet added, becomes Last.
func (a *Attempt) Failed(be *Backend, o Outcome, r Retry) bool {
	a.b.Done(be, o)
	a.last = o.Err + " (fleet " + a.b.cfg.Fleet + ")"
	if a.nfailed < len(a.failed) {
		a.failed[a.nfailed] = be
		a.nfailed++
	}
	switch r {
	case Unsent:
		if a.unsent >= MaxUnsentRetries {
			return false
		}
		a.unsent++
		a.b.NoteFreeRetry()
		return true
	case Stale:
		if a.replays >= MaxRetries {
			return false
		}
		a.replays++
		a.b.NoteFreeRetry()
		a.fresh = true
		return true
	case Replay:
		if a.replays >= MaxRetries || !a.b.TryRetry() {
			return false
		}
		a.replays++
		if a.retried {
			a.b.RetryDone()
		}
		a.retried = true
		return true
	}
	return false
}

// Tried reports whether a try failed already.
func (a *Attempt) Tried() bool { return a.nfailed > 0 }

// Last describes the last failed try, naming the fleet.
func (a *Attempt) Last() string { return a.last }

// Close returns the retry budget the request held.
func (a *Attempt) Close() {
	if a.retried {
		a.b.RetryDone()
		a.retried = false
	}
}

package stream

import shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"

// ring is a bounded FIFO of samples that drops the oldest when full. It is
// not safe for concurrent use; Client guards it.
type ring struct {
	buf     []*shoalv1.Sample
	head    int // index of the oldest
	n       int
	dropped uint64
}

func newRing(size int) *ring { return &ring{buf: make([]*shoalv1.Sample, size)} }

func (r *ring) push(s *shoalv1.Sample) {
	if r.n == len(r.buf) {
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
		r.n--
		r.dropped++
	}
	r.buf[(r.head+r.n)%len(r.buf)] = s
	r.n++
}

// peek returns up to max of the oldest samples without removing them.
func (r *ring) peek(max int) []*shoalv1.Sample {
	k := min(max, r.n)
	out := make([]*shoalv1.Sample, k)
	for i := range k {
		out[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	return out
}

// pop removes the k oldest samples, or fewer if some were dropped meanwhile.
func (r *ring) pop(k int) {
	k = min(k, r.n)
	for range k {
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
	}
	r.n -= k
}

package localcloud

import "net/http"

// runCloudWatch decodes tree into op's input, runs op and writes the
// answer in p's format.
func (s *Server) runCloudWatch(w http.ResponseWriter, r *http.Request, p cwProtocol, op string, tree any) {
	// Which protocol a client really sent is not visible from outside;
	// tests of third-party clients read it from this line.
	s.cloud.log.Debug("cloudwatch request", "protocol", p.name(), "operation", op, "contentType", r.Header.Get("Content-Type"), "target", r.Header.Get("X-Amz-Target"), "contentEncoding", r.Header.Get("Content-Encoding"))
	w, done, ok := s.gate(w, r, "monitoring", op, nil, p.writeError)
	if !ok {
		return
	}
	defer done()
	o, ok := cwOps[op]
	if !ok {
		p.writeError(w, apiErr(http.StatusBadRequest, "InvalidAction", "The operation %s is not implemented by the local cloud's CloudWatch", op))
		return
	}
	in := o.newInput()
	if err := p.decoder().decodeInput(in, tree); err != nil {
		p.writeError(w, cwError(err))
		return
	}
	out, err := o.call(s, in)
	if err != nil {
		p.writeError(w, cwError(err))
		return
	}
	p.writeOutput(w, op, encodeOutput(out))
}

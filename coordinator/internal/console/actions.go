package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// maxActionBody bounds a write action's JSON body.
const maxActionBody = 4 << 10

// scaleBody is the scale action's body.
type scaleBody struct {
	Desired int32  `json:"desired"`
	Reason  string `json:"reason"`
}

// act runs pause, resume or scale for an operate token, as the CLI would:
// through the API, forwarded to the leader, with the token as the actor.
// The page asks for confirmation first; a request must also carry
// X-Shoal-Console, which a cross-site form cannot set.
func (c *Console) act(w http.ResponseWriter, r *http.Request) {
	fleet, action := r.PathValue("name"), r.PathValue("action")
	method := map[string]string{"pause": "PauseFleet", "resume": "ResumeFleet", "scale": "ScaleFleet"}[action]
	if method == "" {
		writeError(w, status.Errorf(codes.NotFound, "action (%q): must be pause, resume or scale", action))
		return
	}
	if r.Header.Get("X-Shoal-Console") != "1" {
		writeError(w, status.Error(codes.PermissionDenied, "X-Shoal-Console: required (write actions come from the console page)"))
		return
	}
	ctx, ok := c.authorize(w, r, method)
	if !ok {
		return
	}
	var err error
	switch action {
	case "pause":
		_, err = c.cfg.API.PauseFleet(ctx, &shoalv1.PauseFleetRequest{Fleet: fleet})
	case "resume":
		_, err = c.cfg.API.ResumeFleet(ctx, &shoalv1.ResumeFleetRequest{Fleet: fleet})
	case "scale":
		var b scaleBody
		dec := json.NewDecoder(io.LimitReader(r.Body, maxActionBody))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&b); derr != nil {
			writeError(w, status.Errorf(codes.InvalidArgument, "body: want {\"desired\": N}: %v", derr))
			return
		}
		if b.Reason == "" {
			b.Reason = "manual scale from the console"
		}
		var resp *shoalv1.ScaleFleetResponse
		resp, err = c.cfg.API.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: fleet, Desired: b.Desired, Reason: b.Reason})
		if err == nil {
			writeJSON(w, view.DecisionOf(resp.Decision))
			return
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"result": fmt.Sprintf("%s %s: done", action, fleet)})
}

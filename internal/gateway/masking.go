package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
)

// Maskers provides the masking profiles that policy decisions name.
type Maskers interface {
	Profile(name string) (*mask.Masker, bool)
}

// maskState is the masking part of a call.
type maskState struct {
	m   *mask.Masker
	rec *mask.Recorder
}

// logProfile is the profile used to redact request parameters recorded in
// the audit log when the deciding rule names none.
const logProfile = "default"

// maxLoggedBody caps the request body recorded with log: full.
const maxLoggedBody = 64 << 10

// chooseMasker sets up response masking for the decision's profile. A
// profile the configuration does not define refuses the request: without
// it the caller would see unmasked data.
func (g *Gateway) chooseMasker(c *call) error {
	name := c.adm.decision.Mask
	if name == "" || g.masks == nil {
		if name != "" {
			return errors.New("policy rule " + c.adm.decision.Rule + " asks for masking profile " + name + " but masking is not configured")
		}
		return nil
	}
	m, ok := g.masks.Profile(name)
	if !ok {
		return errors.New("policy rule " + c.adm.decision.Rule + " asks for masking profile " + name + ", which is not configured")
	}
	c.mask.m = m
	c.mask.rec = mask.NewRecorder()
	c.mask.rec.SetRequestID(c.requestID)
	return nil
}

// wrapMasking installs the masker on the response (JSON rewritten, SSE and
// text streamed with a bounded hold-back). An error blocks the response.
func (g *Gateway) wrapMasking(resp *http.Response, c *call) error {
	if c.mask.m == nil {
		return nil
	}
	kind := mask.StreamGeneric
	if c.route.profile == "openai" {
		kind = mask.StreamOpenAI
	}
	return c.mask.m.WrapResponse(resp, c.mask.rec, kind)
}

// maskActions converts what the masker recorded for the audit entry and
// counts it in the metrics.
func (g *Gateway) maskActions(c *call) []audit.MaskAction {
	if c.mask.rec == nil {
		return nil
	}
	acts := c.mask.rec.Actions()
	if len(acts) == 0 {
		return nil
	}
	out := make([]audit.MaskAction, 0, len(acts))
	for _, a := range acts {
		g.metrics.maskActions.WithLabelValues(a.Rule, a.Entity).Add(float64(a.Count))
		out = append(out, audit.MaskAction{Rule: a.Rule, Entity: a.Entity, Location: a.Location, Count: a.Count, Fingerprint: a.Fingerprint})
	}
	return out
}

// maskingOutcome records in the completed entry how masking ended the
// response: refused or cut by the masker (masking_failed), or cut short
// because the upstream broke off, timed out or the caller went away, with
// the held-back text dropped (truncated, or client_aborted when the
// caller's request was canceled). An outcome already known is kept.
func (g *Gateway) maskingOutcome(r *http.Request, c *call, e *audit.Entry) {
	rec := c.mask.rec
	if rec == nil {
		return
	}
	detail := func(k, v string) {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details[k] = v
	}
	if f := rec.Failure(); f != "" {
		detail("masking_failure", f)
		if c.outcome == "" {
			c.outcome = audit.OutcomeMaskingFailed
		}
	}
	if t := rec.Truncated(); t != "" {
		detail("truncated", t)
		if c.outcome == "" {
			c.outcome = audit.OutcomeTruncated
			if r.Context().Err() != nil {
				c.outcome = audit.OutcomeClientAborted
			}
		}
	}
}

// params are the request parameters recorded in the audit log, per the
// deciding rule's log mode (docs/audit.md):
//   - hash_only: none (the body hash is always recorded);
//   - redacted (default): the body facts (model, stream, sizes, tool
//     names), string values passed through the masker;
//   - full: the facts and the request body itself, PII masked by the same
//     detectors, capped at 64 KiB.
//
// Raw values that masking removed are never recorded.
func (g *Gateway) params(c *call) map[string]any {
	mode := c.adm.decision.Log
	if mode == policy.LogHashOnly || (len(c.adm.facts) == 0 && mode != policy.LogFull) {
		return nil
	}
	m := c.mask.m
	if m == nil && g.masks != nil {
		m, _ = g.masks.Profile(logProfile)
	}
	out := make(map[string]any, len(c.adm.facts)+1)
	for k, v := range c.adm.facts {
		out[k] = redactValue(m, k, v)
	}
	if mode == policy.LogFull && len(c.body) > 0 {
		body := c.body
		if len(body) > maxLoggedBody {
			out["body_truncated"] = true
			body = body[:maxLoggedBody]
		}
		if m != nil {
			body, _ = m.RedactJSONForLog(body)
		}
		if json.Valid(body) {
			out["body"] = json.RawMessage(body)
		} else {
			out["body"] = string(body)
		}
	}
	return out
}

// factLocation is the masker's location of the body fact key; the text
// facts policy.BodyFacts names have theirs built once.
func factLocation(key string) string {
	switch key {
	case "model":
		return "request:model"
	case "user":
		return "request:user"
	case "tools":
		return "request:tools"
	}
	return "request:" + key
}

// redactValue masks the strings of the body fact key's value v. The
// masker's location ("request:" + key) is only built for text: most
// facts are numbers and booleans.
func redactValue(m *mask.Masker, key string, v any) any {
	if m == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return m.MaskText(x, factLocation(key), nil)
	case []string:
		loc := factLocation(key)
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = m.MaskText(s, loc, nil)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = redactValue(m, key, s)
		}
		return out
	}
	return v
}

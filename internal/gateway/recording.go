package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
)

// Recorder starts session recordings (internal/recording). Reserve is
// called before a request is forwarded and must do no I/O; in strict mode
// it returns an error when the store cannot accept a recording, and the
// request is then refused with 503 without being forwarded. At level off
// it returns a nil capture.
type Recorder interface {
	Reserve(info recording.Info) (*recording.Capture, error)
}

// DetailRecording is the key of the recording's summary in the terminal
// audit entry's details: {"id", "digest", "level", "outcome": "stored" |
// "failed", "error"}. warden replay --verify and the admin API compare a
// recording's digest with the one found here.
const DetailRecording = "recording"

// recordLevel is the level a decision asks for: the rule's record key, or
// the config default.
func (g *Gateway) recordLevel(c *call) recording.Level {
	if l := c.adm.decision.Record; l != "" {
		return recording.Level(l)
	}
	return g.cfg.Recordings.Default
}

// reserveRecording starts the recording the decision asks for, before the
// admission entry is written. It answers the request itself (503) and
// returns false when strict mode refuses it: nothing is forwarded.
func (g *Gateway) reserveRecording(w http.ResponseWriter, r *http.Request, c *call) bool {
	level := g.recordLevel(c)
	if level == recording.LevelOff || level == "" {
		return true
	}
	c.recLevel = level
	var err error
	if g.recorder == nil {
		err = recording.ErrUnavailable
		if g.cfg.Recordings.Mode == recording.BestEffort {
			c.recErr = "no recorder is configured"
			return true
		}
	} else {
		info := recording.Info{
			RequestID: c.requestID, Route: c.route.name, Start: c.start, Level: level,
			RawRequest: c.adm.decision.RecordRaw, Redact: g.requestRedactor(c),
		}
		if p := c.adm.principal; p != nil {
			info.Principal = p.Subject
		}
		c.rec, err = g.recorder.Reserve(info)
	}
	if err == nil {
		return true
	}
	g.metrics.recordingRefused.Inc()
	g.log.Error("recording store cannot accept a recording; request refused (recordings.mode: strict)", "request_id", c.requestID, "err", err)
	g.recordRefusal(r, c, audit.KindRequestRefused, http.StatusServiceUnavailable, map[string]any{"reason": "recording_unavailable"})
	g.fail(w, c, apierr.Unavailable, "the recording this request requires cannot be stored now; it was not forwarded")
	return false
}

// requestRedactor redacts a request body for a recording with the
// detectors of log: redacted (the rule's masking profile, else the
// default one). Without masking configured nothing can redact, and the
// body is not recorded (nil).
func (g *Gateway) requestRedactor(c *call) func([]byte) ([]byte, error) {
	m := c.mask.m
	if m == nil && g.masks != nil {
		m, _ = g.masks.Profile(logProfile)
	}
	if m == nil {
		return nil
	}
	return func(b []byte) ([]byte, error) {
		out, _ := m.RedactJSONForLog(b)
		return out, nil
	}
}

// captureRequest records the request as forwarded (called from rewrite,
// once the outbound headers are final).
func captureRequest(c *call, in, out *http.Request) {
	if c.rec == nil {
		return
	}
	scheme := "http"
	if in.TLS != nil {
		scheme = "https"
	}
	c.rec.Request(recording.ForwardedRequest{
		Method: out.Method, Scheme: scheme, Host: in.Host, Path: c.path,
		RawQuery: out.URL.RawQuery, Header: out.Header, Body: c.body,
	})
}

// finishRecording stores the capture (in the background completion path,
// never on the client's) and returns the summary for the terminal entry,
// or nil when nothing was to be recorded.
func (g *Gateway) finishRecording(rec *recording.Capture, level recording.Level, recErr string) map[string]any {
	if level == "" {
		return nil
	}
	out := map[string]any{"level": string(level)}
	if rec == nil {
		out["outcome"] = string(recording.OutcomeFailed)
		out["error"] = recErr
		g.metrics.recordings.WithLabelValues(string(recording.OutcomeFailed)).Inc()
		return out
	}
	// Finish is bounded by the recorder's save_timeout (it makes its own
	// deadline): a second timer here only cost a context and a timer per
	// request.
	res := rec.Finish(context.Background())
	out["id"] = res.ID
	out["outcome"] = string(res.Outcome)
	if res.Outcome == recording.OutcomeStored {
		out["digest"] = res.Digest.String()
	} else if res.Err != nil {
		out["error"] = res.Err.Error()
		g.log.Warn("recording failed", "recording", rec.ID(), "err", res.Err)
	}
	g.metrics.recordings.WithLabelValues(string(res.Outcome)).Inc()
	return out
}

// RecorderReadiness is implemented by a Recorder that can tell, from
// cached state and without I/O, whether its store accepts recordings now
// (*recording.Recorder does).
type RecorderReadiness interface {
	Ready() error
}

// RecordingReady is the /readyz check of the recording store. It fails
// only when recordings.mode is strict and recordings are required (the
// config default or any policy rule records), and the store cannot take
// them: requests that need a recording would get 503 recording_unavailable
// until it answers again, so a load balancer should send them elsewhere.
// It recovers as soon as the recorder's background probe succeeds.
func (g *Gateway) RecordingReady(context.Context) error {
	if g.cfg.Recordings.Mode == recording.BestEffort || !g.recordingRequired() {
		return nil
	}
	if g.recorder == nil {
		return errors.New("recordings are required (recordings.mode: strict) but no recorder is configured")
	}
	rr, ok := g.recorder.(RecorderReadiness)
	if !ok {
		return nil
	}
	if err := rr.Ready(); err != nil {
		return fmt.Errorf("the recording store cannot accept recordings (recordings.mode: strict): %w", err)
	}
	return nil
}

// recordingRequired reports whether any request may need a recording:
// the config default records, or a rule of the current policy does.
func (g *Gateway) recordingRequired() bool {
	if l := g.cfg.Recordings.Default; l != "" && l != recording.LevelOff {
		return true
	}
	if g.policy == nil {
		return false
	}
	p := g.policy.Current()
	if p == nil {
		return false
	}
	for _, r := range p.Rules() {
		if r.Record != "" && r.Record != policy.RecordOff {
			return true
		}
	}
	return false
}

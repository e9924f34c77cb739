package mask

import "sync"

// Action is one kind of masking that happened: evidence for the audit entry.
// It never holds the masked value.
type Action struct {
	// Rule is the rule id, e.g. "entities.CREDIT_CARD", "regex.mrn",
	// "json_paths.patient_mrn".
	Rule string `json:"rule"`
	// Entity is the entity type, e.g. CREDIT_CARD.
	Entity string `json:"entity"`
	// Location is the JSON path ($.choices[0].message.content) or stream
	// channel (sse:choices[0].delta.content) where the value was found.
	Location string `json:"location"`
	// Count is how many times this rule masked this value at this location.
	Count int `json:"count"`
	// Fingerprint is HMAC-SHA256(deployment key, entity, canonical value),
	// 16 hex digits.
	Fingerprint string `json:"fingerprint"`
}

type actionKey struct{ rule, entity, location, fp string }

// Recorder collects masking actions for one response, merging repeats
// (same rule, entity, location and fingerprint: Count is incremented). It
// is safe for concurrent use; the gateway reads it after the response body
// is closed. A nil *Recorder records nothing.
type Recorder struct {
	mu        sync.Mutex
	idx       map[actionKey]int
	actions   []Action
	failure   string
	truncated string
	reqID     string
}

// SetRequestID names the request in the error events the masker writes
// into a stream it ends early.
func (r *Recorder) SetRequestID(id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqID = id
}

func (r *Recorder) requestID() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqID
}

// truncate notes that the response ended abnormally (the upstream broke,
// timed out, the request was canceled) and that held-back text was dropped.
func (r *Recorder) truncate(reason string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.truncated == "" {
		r.truncated = reason
	}
}

// Truncated returns why a streamed response ended abnormally after part of
// it had been sent ("" if it did not): the upstream connection broke or
// timed out, or the request was canceled. The text the masker held back
// was dropped, not flushed. The gateway records the outcome "truncated".
func (r *Recorder) Truncated() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.truncated
}

// fail notes that the response was cut short by the masker (fail closed).
func (r *Recorder) fail(reason string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failure == "" {
		r.failure = reason
	}
}

// Failure returns why the masker refused or cut the response ("" if it did
// not); the gateway records it in the completed audit entry.
func (r *Recorder) Failure() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failure
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{} }

func (r *Recorder) add(a Action) {
	if r == nil {
		return
	}
	k := actionKey{a.Rule, a.Entity, a.Location, a.Fingerprint}
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.idx[k]; ok {
		r.actions[i].Count += a.Count
		return
	}
	if r.idx == nil {
		r.idx = map[actionKey]int{}
	}
	r.idx[k] = len(r.actions)
	r.actions = append(r.actions, a)
}

// Actions returns a copy of the recorded actions in first-seen order.
func (r *Recorder) Actions() []Action {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Action(nil), r.actions...)
}

// Total returns the number of masked values.
func (r *Recorder) Total() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.actions {
		n += a.Count
	}
	return n
}

package report

import (
	"time"
)

// Format is the format name of the report JSON.
const Format = "warden-report/1"

// Report is the evidence report for one period. Its JSON is the
// reference rendering: HTML and PDF show the same data.
type Report struct {
	// Format is Format.
	Format string `json:"format"`
	// Cover says what the report covers, who made it and how it was
	// verified.
	Cover Cover `json:"cover"`
	// Sections has one section per Annex A control, in Controls order.
	Sections []Section `json:"sections"`
	// Daily are the per-day counts behind the charts (UTC days).
	Daily []Day `json:"daily"`
}

// Period is the half-open time interval [From, To) a report covers.
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether t is in the period.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// Cover is the report's first page.
type Cover struct {
	Period      Period    `json:"period"`
	GeneratedAt time.Time `json:"generated_at"`
	GeneratedBy string    `json:"generated_by"`
	// Origin is the log's name (the checkpoints' origin line).
	Origin string `json:"origin"`
	// Scope: what the entries of the period name.
	Scope Scope `json:"scope"`
	// Segment is the slice [From, To) of the log the figures are computed
	// from: From is 0 or a checkpoint size, To a checkpoint size (or the
	// store size when the tail is not signed yet). The period's entries
	// are the segment's entries whose time is in the period.
	Segment SeqRange `json:"segment"`
	// PeriodEntries is the number of entries whose time is in the period,
	// and First/Last their smallest and largest sequence numbers (-1 when
	// there are none).
	PeriodEntries int64 `json:"period_entries"`
	FirstSeq      int64 `json:"first_seq"`
	LastSeq       int64 `json:"last_seq"`
	// Checkpoints are the signed checkpoints bounding and inside the
	// segment, ascending.
	Checkpoints []CheckpointRef `json:"checkpoints"`
	// Latest is the newest checkpoint of the log when the report was made.
	Latest CheckpointRef `json:"latest"`
	// Verification is the result of verifying the whole log.
	Verification Verification `json:"verification"`
	// Seed makes the samples reproducible: the same seed and entries give
	// the same samples.
	Seed uint64 `json:"seed"`
	// HowToVerify lists the commands that verify the report offline.
	HowToVerify []string `json:"how_to_verify"`
}

// Scope is what the period's entries show of the deployment.
type Scope struct {
	Instances []string `json:"instances"`
	Routes    []Route  `json:"routes"`
	// PolicyVersions are the policy versions that decided requests in the
	// period, or were installed during it.
	PolicyVersions []PolicyVersion `json:"policy_versions"`
}

// Route is a route named by entries; Upstream is filled from the
// configuration when the generator was given it (entries do not record
// upstream addresses).
type Route struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream,omitempty"`
	Requests int64  `json:"requests"`
}

// PolicyVersion is one policy version seen in the period.
type PolicyVersion struct {
	Version   string    `json:"version"`
	Decisions int64     `json:"decisions"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// SeqRange is the half-open range [From, To) of sequence numbers.
type SeqRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// CheckpointRef identifies a signed checkpoint and its cosignatures.
type CheckpointRef struct {
	Size int64     `json:"size"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// Witnesses are the witnesses whose cosignature on this checkpoint is
	// kept (verified when the generator had their keys).
	Witnesses []string `json:"witnesses,omitempty"`
}

// Verification is the result of verifying the log offline.
type Verification struct {
	// OK is true when everything below held.
	OK bool `json:"ok"`
	// Entries is the number of entries whose leaf and tree hashes were
	// recomputed; Checkpoints the number of signatures checked.
	Entries     int64 `json:"entries"`
	Checkpoints int   `json:"checkpoints"`
	// UnsignedTail is the number of entries after the newest checkpoint.
	UnsignedTail int64 `json:"unsigned_tail"`
	// Cosignatures is the number of witness cosignatures checked on the
	// segment's checkpoints; CosignaturesChecked says whether witness keys
	// were given (otherwise they are listed, not verified).
	Cosignatures        int  `json:"cosignatures"`
	CosignaturesChecked bool `json:"cosignatures_checked"`
	// Problem names the first divergence when OK is false.
	Problem string `json:"problem,omitempty"`
	// Summary is a sentence for the cover.
	Summary string `json:"summary"`
}

// Section is the evidence for one Annex A control.
type Section struct {
	// Control is the Annex A reference, e.g. "A.8.3".
	Control string `json:"control"`
	// Title is the control's name in ISO/IEC 27001:2022.
	Title string `json:"title"`
	// Enforces says what Warden does for this control.
	Enforces string `json:"enforces"`
	// Limits says what this section does not prove.
	Limits string `json:"limits,omitempty"`
	// Figures are the counts for the period.
	Figures []Figure `json:"figures"`
	// Sample is a reproducible random sample of the entries the figures
	// count (seed in the cover), each with its inclusion proof.
	Sample []Sample `json:"sample"`
	// SampleOf is the number of entries the sample was drawn from.
	SampleOf int64 `json:"sample_of"`
	// Exceptions are the entries an auditor must look at; empty means
	// there were none (the renderings say "none" explicitly).
	Exceptions []Exception `json:"exceptions"`
	// ExceptionsTotal counts every exception; Exceptions lists at most
	// MaxExceptions of them.
	ExceptionsTotal int64 `json:"exceptions_total"`
	// Changes (A.8.32 only) are the period's applied policy versions with
	// who, when and a diff summary (at most MaxExceptions of them).
	Changes []PolicyChange `json:"changes,omitempty"`
}

// Figure is one number of the report and the query that produced it.
type Figure struct {
	// ID is stable across reports (section-local), e.g. "denials".
	ID string `json:"id"`
	// Label is the figure's name for people.
	Label string `json:"label"`
	// Query defines the figure over the period's entries.
	Query string `json:"query"`
	// Value is the figure.
	Value int64 `json:"value"`
	// By breaks Value down by a key when the query has a "by".
	By map[string]int64 `json:"by,omitempty"`
	// Unit is "" for counts, or e.g. "s".
	Unit string `json:"unit,omitempty"`
}

// Sample is one sampled entry with its inclusion proof.
type Sample struct {
	Seq       int64     `json:"seq"`
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	Summary   string    `json:"summary"`
	// Proof is the RFC 6962 inclusion proof of the entry in the tree of
	// ProofSize entries (the cover's last checkpoint); empty when no
	// checkpoint covers the entry yet.
	ProofSize int64    `json:"proof_size,omitempty"`
	Proof     []string `json:"proof,omitempty"`
}

// Exception is one entry an auditor should look at.
type Exception struct {
	Seq       int64     `json:"seq"`
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	What      string    `json:"what"`
}

// Day is the per-day counts of the charts.
type Day struct {
	Date      string `json:"date"` // YYYY-MM-DD, UTC
	Requests  int64  `json:"requests"`
	Denials   int64  `json:"denials"`
	Approvals int64  `json:"approvals"`
	Masking   int64  `json:"masking_actions"`
}

// MaxExceptions caps the exceptions listed per section (all are counted).
const MaxExceptions = 200

// SampleSize is the number of entries sampled per section.
const SampleSize = 5

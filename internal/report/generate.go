package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/witness"
)

// Options tell Generate what to read and how to describe it.
type Options struct {
	// Store is the audit log's store (read only).
	Store audit.Store
	// Verifier is the log's public key.
	Verifier note.Verifier
	// External is the checkpoint kept outside the store (the checkpoint
	// file), nil if none.
	External []byte
	// SingleWriter: one gateway writes the store (SQLite).
	SingleWriter bool
	// Cosignatures, if set, are the witness cosignatures kept beside the
	// store; Witnesses are the witness keys to verify them with (without
	// keys the cosignatures are listed, not verified).
	Cosignatures witness.Store
	Witnesses    []*witness.Verifier
	// Period is the interval the report covers.
	Period Period
	// Seed draws the samples; 0 picks a random one (printed in the cover).
	Seed uint64
	// GeneratedBy names who asked for the report (a CLI user, an admin
	// API principal).
	GeneratedBy string
	// Upstreams maps route names to upstream URLs (from the configuration,
	// when known).
	Upstreams map[string]string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result is a generated report and the material its evidence bundle
// needs.
type Result struct {
	Report *Report
	// Checkpoints are the signed checkpoints with From <= size <= To of
	// the segment, and the latest one, ascending.
	Checkpoints []audit.Checkpoint
	// Cosigned are the cosigned notes kept for those checkpoints.
	Cosigned [][]byte
	// Consistency are the proofs between consecutive Checkpoints.
	Consistency []ConsistencyProof

	st audit.Store
}

// ConsistencyProof proves the tree of size Old is a prefix of the tree
// of size New.
type ConsistencyProof struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Proof []string `json:"proof"`
}

const readChunk = 4096

// Generate verifies the log, finds the segment covering the period,
// computes the report from its entries and attaches inclusion proofs to
// the samples. A log that does not verify still gets a report (its cover
// says so, and names the divergence); ErrUnsigned-style problems are in
// Cover.Verification.
func Generate(ctx context.Context, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if !o.Period.From.Before(o.Period.To) {
		return nil, fmt.Errorf("report: the period is empty: from %s is not before to %s", o.Period.From.Format(time.RFC3339), o.Period.To.Format(time.RFC3339))
	}
	if o.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Seed = binary.BigEndian.Uint64(b[:]) | 1
	}
	st := o.Store
	rep := &Report{Format: Format}
	cv := &rep.Cover
	cv.Period = Period{From: o.Period.From.UTC(), To: o.Period.To.UTC()}
	cv.GeneratedAt = o.Now().UTC()
	cv.GeneratedBy = o.GeneratedBy
	cv.Seed = o.Seed
	cv.Origin = o.Verifier.Name()

	// Verification reads the whole log; it runs beside the period's own
	// reads (another CPU, the same read-only store).
	type verified struct {
		rep audit.Report
		err error
	}
	vch := make(chan verified, 1)
	go func() {
		vr, err := audit.Verify(ctx, st, o.Verifier, audit.VerifyOptions{External: o.External, SingleWriter: o.SingleWriter})
		vch <- verified{vr, err}
	}()
	waitVerify := func() error {
		v := <-vch
		var d *audit.Divergence
		switch {
		case errors.As(v.err, &d):
			cv.Verification = Verification{Problem: d.Msg, Summary: "FAILED: " + d.Msg}
		case v.err != nil:
			return fmt.Errorf("report: verify: %w", v.err)
		default:
			cv.Verification = Verification{OK: true, Entries: v.rep.Size - v.rep.From, Checkpoints: v.rep.Checkpoints, UnsignedTail: v.rep.UnsignedTail}
		}
		return nil
	}
	verifyDone := false
	defer func() {
		if !verifyDone {
			<-vch
		}
	}()

	size, err := st.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	first, last, err := periodSeqs(ctx, st, size, cv.Period)
	if err != nil {
		return nil, err
	}
	seg := segmentFor(cps, size, first, last)
	cv.Segment = seg

	c := newCounter(cv.Period)
	for from := seg.From; from < seg.To; from += readChunk {
		recs, err := st.ReadRecords(ctx, from, min(from+readChunk, seg.To))
		if err != nil {
			return nil, fmt.Errorf("report: read entries: %w", err)
		}
		raw := make([]rawEntry, len(recs))
		for i, r := range recs {
			raw[i] = rawEntry{r.Seq, r.Data}
		}
		// DecodeEntry: these bytes count only if the verification running
		// beside this loop recomputes them into the signed tree (a log
		// that fails gets a FAILED cover and no bundle).
		es, err := parseAll(raw, audit.DecodeEntry)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		for _, e := range es {
			c.Add(e)
		}
	}
	comp := c.Result(o.Seed)
	if err := fillSamples(ctx, comp.Sections, func(seq int64) (*audit.Entry, error) {
		recs, err := st.ReadRecords(ctx, seq, seq+1)
		if err != nil {
			return nil, err
		}
		return audit.ParseEntry(seq, recs[0].Data)
	}); err != nil {
		return nil, fmt.Errorf("report: samples: %w", err)
	}
	apply(rep, comp)
	verifyDone = true
	if err := waitVerify(); err != nil {
		return nil, err
	}
	for i := range cv.Scope.Routes {
		cv.Scope.Routes[i].Upstream = o.Upstreams[cv.Scope.Routes[i].Name]
	}

	res := &Result{Report: rep, st: st}
	for _, cp := range cps {
		if cp.Size >= seg.From && cp.Size <= seg.To && cp.Size > 0 {
			res.Checkpoints = append(res.Checkpoints, cp)
		}
	}
	if len(cps) > 0 {
		latest := cps[len(cps)-1]
		cv.Latest = ref(latest)
		if len(res.Checkpoints) == 0 || res.Checkpoints[len(res.Checkpoints)-1].Size != latest.Size {
			res.Checkpoints = append(res.Checkpoints, latest)
		}
	}
	if err := res.attachCosignatures(ctx, o); err != nil {
		return nil, err
	}
	for _, cp := range res.Checkpoints {
		if cp.Size <= seg.To {
			cv.Checkpoints = append(cv.Checkpoints, res.refWithWitnesses(cp))
		}
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	for i := 1; i < len(res.Checkpoints); i++ {
		a, b := res.Checkpoints[i-1], res.Checkpoints[i]
		p, err := tlog.ProveTree(b.Size, a.Size, hr)
		if err != nil {
			return nil, fmt.Errorf("report: consistency proof %d..%d: %w", a.Size, b.Size, err)
		}
		res.Consistency = append(res.Consistency, ConsistencyProof{Old: a.Size, New: b.Size, Proof: hashStrings(p)})
	}
	if end, ok := signedEnd(cps, seg.To); ok {
		for si := range rep.Sections {
			for j := range rep.Sections[si].Sample {
				s := &rep.Sections[si].Sample[j]
				p, err := tlog.ProveRecord(end, s.Seq, hr)
				if err != nil {
					return nil, fmt.Errorf("report: inclusion proof of entry %d: %w", s.Seq, err)
				}
				s.ProofSize, s.Proof = end, hashStrings(p)
			}
		}
	}
	cv.Verification.Summary = summary(cv)
	cv.HowToVerify = []string{
		"warden evidence export --from " + cv.Period.From.Format(time.RFC3339) + " --to " + cv.Period.To.Format(time.RFC3339) + " --out bundle.tar.gz",
		"warden verify --bundle bundle.tar.gz --key audit.verifier   # the verifier key obtained out of band",
		"warden verify --bundle bundle.tar.gz --key audit.verifier --witness witness.pub   # also check the witnesses' cosignatures",
	}
	return res, nil
}

// signedEnd reports whether to is the size of a signed checkpoint.
func signedEnd(cps []audit.Checkpoint, to int64) (int64, bool) {
	for _, c := range cps {
		if c.Size == to && to > 0 {
			return to, true
		}
	}
	return 0, false
}

func summary(cv *Cover) string {
	v := cv.Verification
	if !v.OK {
		return "FAILED: " + v.Problem
	}
	s := fmt.Sprintf("the whole log verified: %d entries' leaf and tree hashes recomputed, %d checkpoint signatures checked", v.Entries, v.Checkpoints)
	switch {
	case v.CosignaturesChecked:
		s += fmt.Sprintf(", %d witness cosignatures verified", v.Cosignatures)
	case v.Cosignatures > 0:
		s += fmt.Sprintf(", %d witness cosignatures kept (not verified: no witness keys given)", v.Cosignatures)
	default:
		s += ", no witness cosignatures"
	}
	if v.UnsignedTail > 0 {
		s += fmt.Sprintf("; %d newest entries not signed yet", v.UnsignedTail)
	}
	return s
}

// attachCosignatures reads the cosignatures of the result's checkpoints
// and verifies them when witness keys were given.
func (r *Result) attachCosignatures(ctx context.Context, o Options) error {
	if o.Cosignatures == nil || len(r.Checkpoints) == 0 {
		return nil
	}
	want := map[int64]bool{}
	for _, c := range r.Checkpoints {
		want[c.Size] = true
	}
	top := r.Checkpoints[len(r.Checkpoints)-1].Size
	before := top + 1
	v := &r.Report.Cover.Verification
	v.CosignaturesChecked = len(o.Witnesses) > 0
	for {
		rows, err := o.Cosignatures.Cosignatures(ctx, "", before, 1000)
		if err != nil {
			return fmt.Errorf("report: cosignatures: %w", err)
		}
		for _, row := range rows {
			if !want[row.Size] {
				continue
			}
			if len(o.Witnesses) > 0 {
				c, err := witness.OpenCosigned(row.Note, o.Verifier, o.Witnesses)
				if err != nil || len(c.Sigs) == 0 {
					v.OK = false
					v.Problem = fmt.Sprintf("the cosignature of %s on checkpoint %d does not verify", row.Witness, row.Size)
					continue
				}
			}
			v.Cosignatures++
			r.Cosigned = append(r.Cosigned, row.Note)
		}
		if len(rows) < 1000 || rows[len(rows)-1].Size < r.Checkpoints[0].Size {
			return nil
		}
		before = rows[len(rows)-1].Size
	}
}

func (r *Result) refWithWitnesses(cp audit.Checkpoint) CheckpointRef {
	out := ref(cp)
	for _, n := range r.Cosigned {
		if bytes.HasPrefix(n, cp.Note[:bytes.Index(cp.Note, []byte("\n\n"))+2]) {
			out.Witnesses = append(out.Witnesses, cosigners(n, r.Report.Cover.Origin)...)
		}
	}
	return out
}

// cosigners lists the signature names on a note other than the log's.
func cosigners(n []byte, origin string) []string {
	var out []string
	_, sigs, _ := bytes.Cut(n, []byte("\n\n"))
	for _, line := range bytes.Split(sigs, []byte("\n")) {
		f := bytes.Fields(bytes.TrimPrefix(line, []byte("— ")))
		if len(f) == 2 && string(f[0]) != origin {
			out = append(out, string(f[0]))
		}
	}
	return out
}

func ref(cp audit.Checkpoint) CheckpointRef {
	return CheckpointRef{Size: cp.Size, Hash: cp.Hash.String(), Time: cp.Time.UTC()}
}

func hashStrings[T ~[]tlog.Hash](p T) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = h.String()
	}
	return out
}

// apply copies what the entries determine into the report.
func apply(rep *Report, c Computed) {
	rep.Sections = c.Sections
	rep.Daily = c.Daily
	if rep.Daily == nil {
		rep.Daily = []Day{}
	}
	rep.Cover.Scope = c.Scope
	rep.Cover.PeriodEntries = c.PeriodEntries
	rep.Cover.FirstSeq = c.FirstSeq
	rep.Cover.LastSeq = c.LastSeq
}

// fillSamples sets each sample's kind, time, request id and summary from
// its entry.
func fillSamples(ctx context.Context, secs []Section, get func(seq int64) (*audit.Entry, error)) error {
	for i := range secs {
		for j := range secs[i].Sample {
			s := &secs[i].Sample[j]
			e, err := get(s.Seq)
			if err != nil {
				return err
			}
			*s = Sample{Seq: s.Seq, Kind: e.Kind, Time: e.Time, RequestID: e.RequestID, Summary: Summarize(e)}
		}
	}
	return ctx.Err()
}

// periodSeqs returns the smallest and largest sequence numbers of the
// entries whose time is in p (-1, -1 when none). Entry times are nearly
// but not strictly ordered by sequence (they are stamped before they are
// sequenced), so every entry is looked at; only its time is decoded.
func periodSeqs(ctx context.Context, st audit.Store, size int64, p Period) (int64, int64, error) {
	first, last := int64(-1), int64(-1)
	for from := int64(0); from < size; from += readChunk {
		recs, err := st.ReadRecords(ctx, from, min(from+readChunk, size))
		if err != nil {
			return 0, 0, fmt.Errorf("report: read entries: %w", err)
		}
		for _, r := range recs {
			t, err := EntryTime(r.Data)
			if err != nil {
				return 0, 0, fmt.Errorf("report: entry %d: %w", r.Seq, err)
			}
			if p.Contains(t) {
				if first < 0 {
					first = r.Seq
				}
				last = r.Seq
			}
		}
	}
	return first, last, nil
}

var timeKey = []byte(`"time":"`)

// EntryTime decodes only the time of canonical entry bytes. In the
// canonical encoding keys are sorted, and the only top-level fields after
// "time" are "upstream_ns" and "v", both numbers: so the last
// occurrence of `"time":"` is the top-level one (a nested "time" key or
// a string containing it comes earlier or is escaped).
func EntryTime(data []byte) (time.Time, error) {
	i := bytes.LastIndex(data, timeKey)
	if i < 0 {
		return time.Time{}, errors.New("no time")
	}
	rest := data[i+len(timeKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, errors.New("unterminated time")
	}
	return time.Parse(time.RFC3339Nano, string(rest[:j]))
}

// segmentFor is the slice of the log the report computes from: from the
// largest checkpoint size <= first to the smallest checkpoint size >
// last (the store size when no checkpoint covers last yet).
func segmentFor(cps []audit.Checkpoint, size, first, last int64) SeqRange {
	if first < 0 {
		n := int64(0)
		if len(cps) > 0 {
			n = cps[len(cps)-1].Size
		}
		return SeqRange{From: n, To: n}
	}
	seg := SeqRange{From: 0, To: size}
	best := int64(-1)
	for _, c := range cps {
		if c.Size <= first && c.Size > seg.From {
			seg.From = c.Size
		}
		if c.Size > last && c.Size <= size && (best < 0 || c.Size < best) {
			best = c.Size
		}
	}
	if best >= 0 {
		seg.To = best
	}
	return seg
}

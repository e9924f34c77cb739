package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/witness"
)

// BundleError is a bundle that does not verify; Msg names the problem
// (the file, entry, checkpoint or figure).
type BundleError struct{ Msg string }

func (e *BundleError) Error() string { return "evidence bundle does not verify: " + e.Msg }

func bad(format string, args ...any) error { return &BundleError{Msg: fmt.Sprintf(format, args...)} }

// BundleVerifyOptions tune VerifyBundle.
type BundleVerifyOptions struct {
	// Verifier is the log's key as the auditor obtained it out of band.
	// Nil: the bundle's own keys/audit.verifier is used, which proves
	// only that the bundle is consistent with itself (UsedBundledKey).
	Verifier note.Verifier
	// Witnesses, if set, must have cosigned the segment's last checkpoint
	// (at least MinWitnesses of them).
	Witnesses    []*witness.Verifier
	MinWitnesses int
	// MaxSize bounds the uncompressed bundle (default 8 GiB).
	MaxSize int64
}

// BundleResult summarises a verified bundle.
type BundleResult struct {
	Period        Period
	Entries       int64 // entries of the segment recomputed into the tree
	PeriodEntries int64
	Checkpoints   int
	Proofs        int
	Figures       int
	// Recordings is the number of bundled recordings checked against
	// their terminal entries' digests (erased ones included); -1 when
	// the bundle has none (exported without --with-recordings).
	Recordings     int
	Cosigned       []string // witnesses whose cosignature verified
	UsedBundledKey bool
	Elapsed        time.Duration
}

// VerifyBundle checks an evidence bundle offline: the manifest lists
// exactly the files present with their SHA-256; the entries recompute to
// the signed checkpoints (the segment's tree); every checkpoint signature
// and every consistency and inclusion proof checks; cosignatures verify
// with the given witness keys; and every figure, exception, sample and
// per-day count of the report JSON equals what Compute gives from the
// bundled entries. It returns a *BundleError naming the first problem.
func VerifyBundle(ctx context.Context, rd io.Reader, o BundleVerifyOptions) (BundleResult, error) {
	start := time.Now()
	var res BundleResult
	files, err := readTarGz(rd, o.MaxSize)
	if err != nil {
		return res, err
	}
	var m Manifest
	if err := strictJSON(files[fileManifest], &m); err != nil {
		return res, bad("%s: %v", fileManifest, err)
	}
	if m.Format != BundleFormat {
		return res, bad("%s: format %q, want %q", fileManifest, m.Format, BundleFormat)
	}
	listed := map[string]bool{fileManifest: true}
	for _, f := range m.Files {
		b, ok := files[f.Path]
		if !ok {
			return res, bad("file %s is in the manifest but not in the bundle: it was removed", f.Path)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
			return res, bad("file %s: its SHA-256 does not match the manifest: it was changed", f.Path)
		}
		listed[f.Path] = true
	}
	for p := range files {
		if !listed[p] {
			return res, bad("file %s is in the bundle but not in the manifest", p)
		}
	}
	for _, p := range []string{fileEntries, fileCheckpoints, fileProofs, fileReportJSON, fileReportHTML, fileReportPDF, fileVerifier} {
		if !listed[p] {
			return res, bad("file %s is missing from the manifest and the bundle", p)
		}
	}

	v := o.Verifier
	if v == nil {
		v, err = note.NewVerifier(strings.TrimSpace(string(files[fileVerifier])))
		if err != nil {
			return res, bad("%s: %v", fileVerifier, err)
		}
		res.UsedBundledKey = true
	} else if strings.TrimSpace(string(files[fileVerifier])) != "" {
		bv, err := note.NewVerifier(strings.TrimSpace(string(files[fileVerifier])))
		if err != nil || bv.Name() != v.Name() || bv.KeyHash() != v.KeyHash() {
			return res, bad("%s is not the verifier key you gave: the bundle was signed by another key", fileVerifier)
		}
	}

	var rep Report
	if err := strictJSON(files[fileReportJSON], &rep); err != nil {
		return res, bad("%s: %v", fileReportJSON, err)
	}
	if rep.Format != Format {
		return res, bad("%s: format %q, want %q", fileReportJSON, rep.Format, Format)
	}
	if !rep.Cover.Period.From.Equal(m.Period.From) || !rep.Cover.Period.To.Equal(m.Period.To) {
		return res, bad("%s: the report's period differs from the manifest's", fileReportJSON)
	}
	res.Period = rep.Cover.Period

	// The figures are recomputed from the entries while the segment's
	// tree is (two CPUs); nothing is compared before both are done.
	type computeResult struct {
		c       *counter
		rr      *recordingRefs
		sampled map[int64][]byte
		err     error
	}
	computed := make(chan computeResult, 1)
	go func() {
		sampled := map[int64][]byte{}
		for _, s := range rep.Sections {
			for _, smp := range s.Sample {
				sampled[smp.Seq] = nil
			}
		}
		c := newCounter(rep.Cover.Period)
		rr := newRecordingRefs(rep.Cover.Period)
		var chunk []rawEntry
		flush := func() error {
			// DecodeEntry: these bytes count only if the segment's tree,
			// verified meanwhile, authenticates them.
			es, err := parseAll(chunk, audit.DecodeEntry)
			if err != nil {
				return err
			}
			for i, e := range es {
				if _, ok := sampled[e.Seq]; ok {
					sampled[e.Seq] = chunk[i].data
				}
				c.Add(e)
				rr.add(e)
			}
			chunk = chunk[:0]
			return nil
		}
		err := eachEntry(files[fileEntries], func(seq int64, data []byte) error {
			chunk = append(chunk, rawEntry{seq, data})
			if len(chunk) == readChunk {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		computed <- computeResult{c, rr, sampled, err}
	}()
	joined := false
	defer func() {
		if !joined {
			<-computed
		}
	}()

	// The entries: the segment's tree recomputed against its checkpoints.
	seg := rep.Cover.Segment
	if seg.To > seg.From {
		sr, err := audit.VerifySegment(ctx, bytes.NewReader(files[fileEntries]), v)
		var d *audit.Divergence
		if errors.As(err, &d) {
			return res, bad("%s: %s", fileEntries, d.Msg)
		}
		if err != nil {
			return res, bad("%s: %v", fileEntries, err)
		}
		if sr.From != seg.From || sr.Size != seg.To {
			return res, bad("%s holds entries [%d, %d) but the report was computed from [%d, %d)", fileEntries, sr.From, sr.Size, seg.From, seg.To)
		}
		res.Entries = sr.Size - sr.From
	}

	// Checkpoints: signed, and the ones the report names are there.
	var cf checkpointsFile
	if err := strictJSON(files[fileCheckpoints], &cf); err != nil {
		return res, bad("%s: %v", fileCheckpoints, err)
	}
	cps := map[int64]audit.Checkpoint{}
	for i, n := range cf.Checkpoints {
		c, err := audit.OpenCheckpoint([]byte(n), v)
		if err != nil {
			return res, bad("%s: checkpoint %d: %v", fileCheckpoints, i+1, err)
		}
		if prev, ok := cps[c.Size]; ok && prev.Hash != c.Hash {
			return res, bad("%s: two checkpoints of size %d with different tree hashes: the log was forked", fileCheckpoints, c.Size)
		}
		cps[c.Size] = c
	}
	res.Checkpoints = len(cps)
	named := append(append([]CheckpointRef{}, rep.Cover.Checkpoints...), rep.Cover.Latest)
	for _, ref := range named {
		if ref.Size == 0 {
			continue
		}
		c, ok := cps[ref.Size]
		if !ok || c.Hash.String() != ref.Hash {
			have := make([]int64, 0, len(cps))
			for s := range cps {
				have = append(have, s)
			}
			sort.Slice(have, func(i, j int) bool { return have[i] < have[j] })
			return res, bad("the report names checkpoint of size %d (tree hash %s) but %s does not hold it (it holds sizes %v): a checkpoint was swapped or removed", ref.Size, ref.Hash, fileCheckpoints, have)
		}
	}
	if seg.To > 0 {
		if _, ok := cps[seg.To]; !ok {
			return res, bad("no signed checkpoint of size %d ends the segment in %s", seg.To, fileCheckpoints)
		}
	}

	// Proofs.
	var pf proofsFile
	if err := strictJSON(files[fileProofs], &pf); err != nil {
		return res, bad("%s: %v", fileProofs, err)
	}
	for _, p := range pf.Consistency {
		a, okA := cps[p.Old]
		b, okB := cps[p.New]
		if !okA || !okB {
			return res, bad("%s: consistency proof %d..%d names a checkpoint the bundle does not hold", fileProofs, p.Old, p.New)
		}
		proof, err := parseHashes(p.Proof)
		if err != nil {
			return res, bad("%s: consistency proof %d..%d: %v", fileProofs, p.Old, p.New, err)
		}
		if err := audit.CheckConsistencyProof(tlog.TreeProof(proof), a, b); err != nil {
			return res, bad("%s: %v", fileProofs, err)
		}
		res.Proofs++
	}

	// Witnesses.
	if len(o.Witnesses) > 0 {
		need := max(o.MinWitnesses, 1)
		end := seg.To
		if rep.Cover.Latest.Size > end {
			end = rep.Cover.Latest.Size
		}
		got := map[string]bool{}
		for _, n := range cf.Cosigned {
			c, err := witness.OpenCosigned([]byte(n), v, o.Witnesses)
			if err != nil {
				return res, bad("%s: a cosigned checkpoint does not verify: %v", fileCheckpoints, err)
			}
			if c.Size >= seg.To {
				for _, s := range c.Sigs {
					got[s.Witness] = true
				}
			}
		}
		for w := range got {
			res.Cosigned = append(res.Cosigned, w)
		}
		sort.Strings(res.Cosigned)
		if len(got) < need {
			return res, bad("the segment's checkpoints (up to size %d) are cosigned by %d of the given witnesses, %d needed", end, len(got), need)
		}
	}

	// Recompute every figure from the entries (started above).
	cr := <-computed
	joined = true
	if cr.err != nil {
		return res, bad("%s: %v", fileEntries, cr.err)
	}
	c, sampled := cr.c, cr.sampled
	comp := c.Result(rep.Cover.Seed)
	if err := fillSamples(ctx, comp.Sections, func(seq int64) (*audit.Entry, error) {
		data := sampled[seq]
		if data == nil {
			return nil, bad("the entries give sample entry %d, which the report does not list", seq)
		}
		return audit.ParseEntry(seq, data)
	}); err != nil {
		var be *BundleError
		if errors.As(err, &be) {
			return res, bad("%s: samples differ from the entries (seed %d): %s", fileReportJSON, rep.Cover.Seed, be.Msg)
		}
		return res, err
	}
	if err := compare(&rep, comp); err != nil {
		return res, err
	}
	for _, s := range rep.Sections {
		res.Figures += len(s.Figures)
		for _, smp := range s.Sample {
			if len(smp.Proof) == 0 {
				continue
			}
			cp, ok := cps[smp.ProofSize]
			if !ok {
				return res, bad("%s: %s sample entry %d is proved against checkpoint %d, which the bundle does not hold", fileReportJSON, s.Control, smp.Seq, smp.ProofSize)
			}
			proof, err := parseHashes(smp.Proof)
			if err == nil {
				err = audit.CheckEntryProof(tlog.RecordProof(proof), cp, smp.Seq, sampled[smp.Seq])
			}
			if err != nil {
				return res, bad("%s: %s sample entry %d: inclusion proof: %v", fileReportJSON, s.Control, smp.Seq, err)
			}
			res.Proofs++
		}
	}
	res.Recordings = -1
	if _, ok := files[fileRecordingIndex]; ok {
		if res.Recordings, err = checkRecordings(files, cr.rr); err != nil {
			return res, err
		}
	} else {
		for p := range files {
			if strings.HasPrefix(p, recordingDir) && strings.HasSuffix(p, recordingExt) {
				return res, bad("%s is in the bundle but %s is not", p, fileRecordingIndex)
			}
		}
	}
	res.PeriodEntries = comp.PeriodEntries
	res.Elapsed = time.Since(start)
	return res, nil
}

// compare checks that the report holds exactly what the entries give.
func compare(rep *Report, c Computed) error {
	cv := rep.Cover
	if cv.PeriodEntries != c.PeriodEntries || cv.FirstSeq != c.FirstSeq || cv.LastSeq != c.LastSeq {
		return bad("cover: the report says %d entries in the period (%d to %d), the entries give %d (%d to %d)",
			cv.PeriodEntries, cv.FirstSeq, cv.LastSeq, c.PeriodEntries, c.FirstSeq, c.LastSeq)
	}
	routes := make([]Route, len(cv.Scope.Routes))
	for i, r := range cv.Scope.Routes {
		routes[i] = Route{Name: r.Name, Requests: r.Requests}
	}
	if !sameJSON(routes, c.Scope.Routes) || !sameJSON(cv.Scope.Instances, c.Scope.Instances) || !sameJSON(cv.Scope.PolicyVersions, c.Scope.PolicyVersions) {
		return bad("cover: the scope (instances, routes, policy versions) differs from what the entries give")
	}
	if !sameJSON(rep.Daily, nonNil(c.Daily)) {
		return bad("daily counts differ from what the entries give")
	}
	if len(rep.Sections) != len(c.Sections) {
		return bad("the report has %d sections, want %d", len(rep.Sections), len(c.Sections))
	}
	for i, s := range rep.Sections {
		w := c.Sections[i]
		if s.Control != w.Control {
			return bad("section %d is %s, want %s", i+1, s.Control, w.Control)
		}
		got := map[string]Figure{}
		for _, f := range s.Figures {
			got[f.ID] = f
		}
		if len(got) != len(w.Figures) || len(s.Figures) != len(w.Figures) {
			return bad("%s: the report has %d figures, the entries give %d", s.Control, len(s.Figures), len(w.Figures))
		}
		for _, wf := range w.Figures {
			f, ok := got[wf.ID]
			switch {
			case !ok:
				return bad("%s: figure %s is missing from the report", s.Control, wf.ID)
			case f.Value != wf.Value:
				return bad("%s: figure %s (%s): the report says %d, the entries give %d", s.Control, wf.ID, wf.Label, f.Value, wf.Value)
			case !reflect.DeepEqual(nonNilMap(f.By), nonNilMap(wf.By)):
				return bad("%s: figure %s (%s): the report's breakdown %v differs from the entries' %v", s.Control, wf.ID, wf.Label, f.By, wf.By)
			case f.Query != wf.Query || f.Unit != wf.Unit:
				return bad("%s: figure %s: the report's definition differs from Warden's", s.Control, wf.ID)
			}
		}
		if s.ExceptionsTotal != w.ExceptionsTotal || !sameJSON(s.Exceptions, w.Exceptions) {
			return bad("%s: the report lists %d exceptions, the entries give %d (or they differ)", s.Control, s.ExceptionsTotal, w.ExceptionsTotal)
		}
		if !sameJSON(s.Changes, w.Changes) {
			return bad("%s: the report's policy versions and diff summaries differ from what the entries' policy sources give", s.Control)
		}
		if s.SampleOf != w.SampleOf || len(s.Sample) != len(w.Sample) {
			return bad("%s: the report samples %d of %d entries, the entries give %d of %d", s.Control, len(s.Sample), s.SampleOf, len(w.Sample), w.SampleOf)
		}
		for j, smp := range s.Sample {
			ws := w.Sample[j]
			if smp.Seq != ws.Seq || smp.Kind != ws.Kind || !smp.Time.Equal(ws.Time) || smp.RequestID != ws.RequestID || smp.Summary != ws.Summary {
				return bad("%s: sample %d is entry %d, the entries and seed give entry %d", s.Control, j+1, smp.Seq, ws.Seq)
			}
		}
	}
	return nil
}

func nonNil(d []Day) []Day {
	if d == nil {
		return []Day{}
	}
	return d
}

func nonNilMap(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	if string(x) == "null" {
		x = []byte("[]")
	}
	if string(y) == "null" {
		y = []byte("[]")
	}
	return bytes.Equal(x, y)
}

func parseHashes(s []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(s))
	for i, h := range s {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(b) != len(out[i]) {
			return nil, fmt.Errorf("malformed hash %q", h)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// strictJSON decodes b into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	if b == nil {
		return errors.New("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// readTarGz reads every regular file of a tar.gz, refusing unsafe or
// duplicate names and more than max bytes in all.
func readTarGz(r io.Reader, max int64) (map[string][]byte, error) {
	if max <= 0 {
		max = 8 << 30
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, bad("not a gzip file: %v", err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad("not a tar archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, bad("%s: only regular files may be in a bundle", h.Name)
		}
		if h.Name != path.Clean(h.Name) || path.IsAbs(h.Name) || strings.HasPrefix(h.Name, "../") || h.Name == ".." {
			return nil, bad("%s: unsafe file name", h.Name)
		}
		if _, dup := files[h.Name]; dup {
			return nil, bad("%s appears twice in the bundle", h.Name)
		}
		total += h.Size
		if h.Size < 0 || total > max {
			return nil, bad("the bundle is larger than %d bytes", max)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, bad("%s: %v", h.Name, err)
		}
		files[h.Name] = b
	}
	if files[fileManifest] == nil {
		return nil, bad("no %s in the bundle", fileManifest)
	}
	return files, nil
}

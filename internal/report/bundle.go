package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/wardenhq/warden/internal/audit"
)

// ErrUnsigned: the period's newest entries are not covered by a signed
// checkpoint yet, so they cannot be bundled; the gateway signs them
// within its checkpoint_interval.
var ErrUnsigned = errors.New("report: the period's newest entries are not covered by a signed checkpoint yet")

// BundleFormat is the format name in a bundle's manifest.
const BundleFormat = "warden-evidence-bundle/1"

// Files of a bundle.
const (
	fileManifest    = "manifest.json"
	fileEntries     = "entries.jsonl"
	fileCheckpoints = "checkpoints.json"
	fileProofs      = "proofs.json"
	fileVerifier    = "keys/audit.verifier"
	fileWitnessKeys = "keys/witnesses.txt"
	filePolicies    = "policy/versions.json"
	fileDigests     = "recordings/digests.json"
	fileReportJSON  = "report/report.json"
	fileReportHTML  = "report/report.html"
	fileReportPDF   = "report/report.pdf"
)

// Manifest lists every file of a bundle with its SHA-256.
type Manifest struct {
	Format string         `json:"format"`
	Period Period         `json:"period"`
	Files  []ManifestFile `json:"files"`
}

// ManifestFile is one file of a bundle.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// checkpointsFile is checkpoints.json.
type checkpointsFile struct {
	// Checkpoints are the log-signed checkpoint notes, ascending.
	Checkpoints []string `json:"checkpoints"`
	// Cosigned are the witness-cosigned notes kept for them.
	Cosigned []string `json:"cosigned"`
}

// proofsFile is proofs.json.
type proofsFile struct {
	Consistency []ConsistencyProof `json:"consistency"`
	Inclusion   []inclusionProof   `json:"inclusion"`
}

type inclusionProof struct {
	Seq      int64    `json:"seq"`
	TreeSize int64    `json:"tree_size"`
	Proof    []string `json:"proof"`
}

// digest is one recording or response digest named by an entry.
type digest struct {
	Seq             int64  `json:"seq"`
	RequestID       string `json:"request_id,omitempty"`
	ResponseSHA256  string `json:"response_sha256,omitempty"`
	RecordingDigest string `json:"recording_digest,omitempty"`
}

// BundleOptions add material a Result does not hold.
type BundleOptions struct {
	// VerifierKey is the log's verifier key text (keys/audit.verifier).
	VerifierKey string
	// WitnessKeys are witness cosignature verifier keys, one per line.
	WitnessKeys []string
	// Policies are policy files to include (name -> content), e.g. the
	// policy in force; the log itself records only their versions.
	Policies map[string][]byte
	// Recordings, when set, bundles the recordings the period's terminal
	// entries name (canonical form, or listed as erased) with
	// recordings/index.json (evidence export --with-recordings).
	Recordings RecordingSource
}

// WriteBundle writes the evidence bundle of res as a tar.gz: the
// segment's canonical entries, the checkpoints with their cosignatures,
// the consistency and inclusion proofs, the verifier keys, the policy
// versions, the report in JSON, HTML and PDF, the digests of responses
// and recordings, and a manifest with the SHA-256 of every file. The
// segment must end at a signed checkpoint.
func WriteBundle(ctx context.Context, w io.Writer, res *Result, o BundleOptions) error {
	r := res.Report
	seg := r.Cover.Segment
	if _, ok := signedEnd(res.Checkpoints, seg.To); !ok && seg.To > 0 {
		return fmt.Errorf("%w (entries up to %d; the gateway signs within checkpoint_interval): try again shortly", ErrUnsigned, seg.To)
	}
	if !r.Cover.Verification.OK {
		return fmt.Errorf("report: bundle: the log does not verify (%s): no bundle is made from a log that fails verification", r.Cover.Verification.Problem)
	}
	files := map[string][]byte{}
	var entries bytes.Buffer
	if seg.To > 0 {
		if err := audit.Export(ctx, res.st, &entries, seg.From, seg.To); err != nil {
			return fmt.Errorf("report: bundle: %w", err)
		}
	}
	files[fileEntries] = entries.Bytes()

	var cf checkpointsFile
	for _, c := range res.Checkpoints {
		cf.Checkpoints = append(cf.Checkpoints, string(c.Note))
	}
	for _, n := range res.Cosigned {
		cf.Cosigned = append(cf.Cosigned, string(n))
	}
	files[fileCheckpoints] = mustJSON(cf)

	pf := proofsFile{Consistency: res.Consistency}
	for _, s := range r.Sections {
		for _, smp := range s.Sample {
			if len(smp.Proof) > 0 {
				pf.Inclusion = append(pf.Inclusion, inclusionProof{Seq: smp.Seq, TreeSize: smp.ProofSize, Proof: smp.Proof})
			}
		}
	}
	files[fileProofs] = mustJSON(pf)
	files[fileVerifier] = []byte(strings.TrimSpace(o.VerifierKey) + "\n")
	if len(o.WitnessKeys) > 0 {
		files[fileWitnessKeys] = []byte(strings.Join(o.WitnessKeys, "\n") + "\n")
	}
	files[filePolicies] = mustJSON(r.Cover.Scope.PolicyVersions)
	for name, b := range o.Policies {
		files["policy/"+path.Base(name)] = b
	}
	rr := newRecordingRefs(r.Cover.Period)
	dg, err := digests(files[fileEntries], r.Cover.Period, rr)
	if err != nil {
		return err
	}
	files[fileDigests] = mustJSON(dg)
	if o.Recordings != nil {
		idx, err := bundleRecordings(ctx, o.Recordings, rr, files)
		if err != nil {
			return err
		}
		files[fileRecordingIndex] = mustJSON(idx)
	}

	var js, html, pdf bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		return err
	}
	if err := WriteHTML(&html, r); err != nil {
		return err
	}
	if err := WritePDF(&pdf, r); err != nil {
		return err
	}
	files[fileReportJSON], files[fileReportHTML], files[fileReportPDF] = js.Bytes(), html.Bytes(), pdf.Bytes()

	m := Manifest{Format: BundleFormat, Period: r.Cover.Period}
	for p, b := range files {
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, ManifestFile{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	files[fileManifest] = mustJSON(m)
	return writeTarGz(w, files, r)
}

// digests lists the response and recording digests of the period's
// entries, and feeds every entry of the segment to rr.
func digests(segment []byte, p Period, rr *recordingRefs) ([]digest, error) {
	out := []digest{}
	err := eachEntry(segment, func(seq int64, data []byte) error {
		e, err := audit.ParseEntry(seq, data)
		if err != nil {
			return err
		}
		rr.add(e)
		if !p.Contains(e.Time) {
			return nil
		}
		_, rd := recordingOf(e)
		if e.ResponseSHA256 != "" || rd != "" {
			out = append(out, digest{Seq: seq, RequestID: e.RequestID, ResponseSHA256: e.ResponseSHA256, RecordingDigest: rd})
		}
		return nil
	})
	return out, err
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only our own types
	}
	return append(b, '\n')
}

func writeTarGz(w io.Writer, files map[string][]byte, r *Report) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	// The manifest first, so a reader sees what to expect.
	names = append([]string{fileManifest}, slicesWithout(names, fileManifest)...)
	for _, p := range names {
		b := files[p]
		hdr := &tar.Header{Name: p, Mode: 0o644, Size: int64(len(b)), ModTime: r.Cover.GeneratedAt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("report: bundle: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("report: bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("report: bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("report: bundle: %w", err)
	}
	return nil
}

func slicesWithout(s []string, x string) []string {
	out := s[:0:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// eachEntry calls fn with every entry line of a segment ({"seq":N,
// "entry":{…}}), in order, with the entry's canonical bytes.
func eachEntry(segment []byte, fn func(seq int64, data []byte) error) error {
	for len(segment) > 0 {
		line := segment
		if i := bytes.IndexByte(segment, '\n'); i >= 0 {
			line, segment = segment[:i], segment[i+1:]
		} else {
			segment = nil
		}
		const pre = `{"seq":`
		if !bytes.HasPrefix(line, []byte(pre)) {
			continue // header and checkpoint lines
		}
		rest := line[len(pre):]
		comma := bytes.IndexByte(rest, ',')
		if comma < 0 || !bytes.HasPrefix(rest[comma:], []byte(`,"entry":`)) || !bytes.HasSuffix(rest, []byte("}")) {
			return fmt.Errorf("malformed entry line")
		}
		var seq int64
		if _, err := fmt.Sscan(string(rest[:comma]), &seq); err != nil {
			return fmt.Errorf("malformed entry line: %w", err)
		}
		data := rest[comma+len(`,"entry":`) : len(rest)-1]
		if err := fn(seq, data); err != nil {
			return err
		}
	}
	return nil
}

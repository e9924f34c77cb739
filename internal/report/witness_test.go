package report

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// TestWitnessedBundle: a witness cosigns the log's final checkpoint; the
// report lists the cosigner on the cover, and the bundle verifies with
// the witness's key — but not when two witnesses are required.
func TestWitnessedBundle(t *testing.T) {
	ctx := context.Background()
	tl := newTestLog(t)
	tl.fillScenario(t)
	tl.close(t)
	st, err := sqlite.OpenReadOnly(ctx, tl.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := witnesstest.New(t, "witness-a.example", verifierKey(t, tl))
	wv, err := witness.NewVerifier(w.Key)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := witness.ParseCheckpoint(latest.Note, tl.v)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := (&witness.Client{URL: w.URL, Key: wv}).AddCheckpoint(ctx, 0, nil, cp, tl.v)
	if err != nil {
		t.Fatal(err)
	}
	cdb, err := sqlite.OpenCosignatures(ctx, filepath.Join(tl.dir, "cosignatures.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	if err := cdb.PutCosignature(ctx, witness.Cosignature{Size: cs.Size, Witness: cs.Sigs[0].Witness, KeyHash: cs.Sigs[0].KeyHash, Time: cs.Sigs[0].Time, Note: cs.Bytes()}); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(ctx, Options{Store: st, Verifier: tl.v, SingleWriter: true, Period: day, Seed: 1,
		Cosignatures: cdb, Witnesses: []*witness.Verifier{wv}})
	if err != nil {
		t.Fatal(err)
	}
	cv := res.Report.Cover
	last := cv.Checkpoints[len(cv.Checkpoints)-1]
	if !cv.Verification.OK || cv.Verification.Cosignatures != 1 || !cv.Verification.CosignaturesChecked || strings.Join(last.Witnesses, ",") != "witness-a.example" {
		t.Fatalf("cover: %+v, last checkpoint %+v", cv.Verification, last)
	}
	var b bytes.Buffer
	if err := WriteBundle(ctx, &b, res, BundleOptions{VerifierKey: verifierKey(t, tl), WitnessKeys: []string{w.Key}}); err != nil {
		t.Fatal(err)
	}
	vr, err := VerifyBundle(ctx, bytes.NewReader(b.Bytes()), BundleVerifyOptions{Verifier: tl.v, Witnesses: []*witness.Verifier{wv}})
	if err != nil || strings.Join(vr.Cosigned, ",") != "witness-a.example" {
		t.Fatalf("%+v %v", vr, err)
	}
	other := witnesstest.New(t, "witness-b.example", verifierKey(t, tl))
	ov, _ := witness.NewVerifier(other.Key)
	_, err = VerifyBundle(ctx, bytes.NewReader(b.Bytes()), BundleVerifyOptions{Verifier: tl.v, Witnesses: []*witness.Verifier{wv, ov}, MinWitnesses: 2})
	var be *BundleError
	if !errors.As(err, &be) || !strings.Contains(be.Msg, "cosigned by 1 of the given witnesses, 2 needed") {
		t.Fatalf("two witnesses required: %v", err)
	}
}

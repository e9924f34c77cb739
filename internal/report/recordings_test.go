package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// memRecordings is a RecordingSource over canonical forms in memory; an
// id in erased answers as erased.
type memRecordings struct {
	content map[string][]byte
	erased  map[string]*ErasedRecording
}

func (m memRecordings) Canonical(_ context.Context, id string) ([]byte, error) {
	if e, ok := m.erased[id]; ok {
		return nil, fmt.Errorf("recording %s: %w", id, e)
	}
	b, ok := m.content[id]
	if !ok {
		return nil, errors.New("no such recording")
	}
	return b, nil
}

// recordingsBundle writes a log with three recorded requests (rec-1 and
// rec-2 stored, rec-3 erased within the period) and bundles it with
// the recordings.
func recordingsBundle(t *testing.T) ([]byte, *testLog) {
	t.Helper()
	tl := newTestLog(t)
	src := memRecordings{content: map[string][]byte{}, erased: map[string]*ErasedRecording{}}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("rec%d", i)
		canon := []byte(fmt.Sprintf("WREC1 canonical form of %s: what the caller saw", id))
		d := sha256Digest(canon)
		src.content[id] = canon
		rid := fmt.Sprintf("req-%d", i)
		tl.add(t, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: rid, Principal: alice, Route: "openai", Decision: allow})
		tl.add(t, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: rid, Principal: alice, Route: "openai", Decision: allow, Outcome: audit.OutcomeOK, Status: 200,
			Details: map[string]any{"recording": map[string]any{"id": id, "digest": d, "level": "full", "outcome": "stored"}}})
	}
	// A recording that failed to store is not bundled.
	tl.add(t, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "req-4", Principal: alice, Route: "openai", Decision: allow})
	tl.add(t, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: "req-4", Principal: alice, Route: "openai", Decision: allow, Outcome: audit.OutcomeOK, Status: 200,
		Details: map[string]any{"recording": map[string]any{"id": "rec4", "level": "full", "outcome": "failed", "error": "store down"}}})
	tl.add(t, &audit.Entry{Kind: audit.KindRecordingErased, RequestID: "req-3", Principal: bob,
		Details: map[string]any{"recording_id": "rec3", "digest": sha256Digest(src.content["rec3"]), "erased_by": "bob", "reason": "subject access request 42"}})
	src.erased["rec3"] = &ErasedRecording{At: tl.clock(), By: "bob", Reason: "subject access request 42"}
	delete(src.content, "rec3")
	res := generateScenario(t, tl, day)
	var b bytes.Buffer
	if err := WriteBundle(context.Background(), &b, res, BundleOptions{VerifierKey: verifierKey(t, tl), Recordings: src}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), tl
}

func TestBundleWithRecordingsVerifies(t *testing.T) {
	b, tl := recordingsBundle(t)
	res, err := VerifyBundle(context.Background(), bytes.NewReader(b), BundleVerifyOptions{Verifier: tl.v})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recordings != 3 {
		t.Fatalf("recordings checked: %d, want 3", res.Recordings)
	}
	files, _ := readTarGz(bytes.NewReader(b), 0)
	var idx []BundledRecording
	if err := json.Unmarshal(files[fileRecordingIndex], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx) != 3 || idx[0].File != "recordings/rec1.wrec" || idx[2].File != "" || idx[2].Erased == nil || idx[2].Erased.EntrySeq < 0 || idx[2].Erased.By != "bob" {
		t.Fatalf("index: %+v", idx)
	}
	if string(files["recordings/rec2.wrec"]) != "WREC1 canonical form of rec2: what the caller saw" {
		t.Fatalf("rec2: %q", files["recordings/rec2.wrec"])
	}
	// Without --with-recordings there is no index, and none is checked.
	plain, tl2 := scenarioBundle(t)
	res, err = VerifyBundle(context.Background(), bytes.NewReader(plain), BundleVerifyOptions{Verifier: tl2.v})
	if err != nil || res.Recordings != -1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestBundleRecordingTampering: a flipped byte, a removed recording and a
// swapped recording are refused, naming the request, whether or not the
// forger rewrote the manifest.
func TestBundleRecordingTampering(t *testing.T) {
	b, tl := recordingsBundle(t)
	index := func(f map[string][]byte, mod func([]BundledRecording) []BundledRecording) {
		var idx []BundledRecording
		json.Unmarshal(f[fileRecordingIndex], &idx)
		f[fileRecordingIndex] = mustJSON(mod(idx))
	}
	cases := []struct {
		name string
		mod  func(f map[string][]byte)
		want string
	}{
		{"byte flipped", func(f map[string][]byte) {
			c := bytes.Clone(f["recordings/rec1.wrec"])
			c[3] ^= 1
			f["recordings/rec1.wrec"] = c
		}, "request req-1: recording rec1: recordings/rec1.wrec has digest"},
		{"recording file removed", func(f map[string][]byte) { delete(f, "recordings/rec2.wrec") }, "request req-2: recording rec2: recordings/rec2.wrec is missing"},
		{"recording removed from the index", func(f map[string][]byte) {
			delete(f, "recordings/rec2.wrec")
			index(f, func(idx []BundledRecording) []BundledRecording { return append(idx[:1], idx[2:]...) })
		}, "request req-2: recording rec2 (terminal entry"},
		{"recordings swapped", func(f map[string][]byte) {
			f["recordings/rec1.wrec"], f["recordings/rec2.wrec"] = f["recordings/rec2.wrec"], f["recordings/rec1.wrec"]
		}, "request req-1: recording rec1: recordings/rec1.wrec has digest"},
		{"index rows swapped", func(f map[string][]byte) {
			index(f, func(idx []BundledRecording) []BundledRecording {
				idx[0].ID, idx[1].ID = idx[1].ID, idx[0].ID
				idx[0].Digest, idx[1].Digest = idx[1].Digest, idx[0].Digest
				idx[0].File, idx[1].File = idx[1].File, idx[0].File
				return idx
			})
		}, "request req-1: recordings/index.json names recording rec2"},
		{"erased recording claimed stored", func(f map[string][]byte) {
			index(f, func(idx []BundledRecording) []BundledRecording {
				idx[2].Erased.EntrySeq = 1
				return idx
			})
		}, "request req-3: recording rec3 was erased by entry"},
		{"index removed, files kept", func(f map[string][]byte) { delete(f, fileRecordingIndex) }, "recordings/index.json is not"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, fix := range []bool{false, true} {
				tampered := repack(t, b, fix, c.mod)
				_, err := VerifyBundle(context.Background(), bytes.NewReader(tampered), BundleVerifyOptions{Verifier: tl.v})
				var be *BundleError
				if !errors.As(err, &be) {
					t.Fatalf("fix manifest %v: accepted or wrong error: %v", fix, err)
				}
				if fix && !strings.Contains(be.Msg, c.want) {
					t.Errorf("%q does not name the problem (%q)", be.Msg, c.want)
				}
				if !fix && !strings.Contains(be.Msg, "manifest") {
					t.Errorf("without a rewritten manifest: %q", be.Msg)
				}
			}
		})
	}
}

// TestBundleRefusesBadRecording: a recording whose content does not
// match its terminal entry's digest is not bundled.
func TestBundleRefusesBadRecording(t *testing.T) {
	tl := newTestLog(t)
	tl.add(t, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "r", Principal: alice, Route: "openai", Decision: allow})
	tl.add(t, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: "r", Principal: alice, Route: "openai", Decision: allow, Outcome: audit.OutcomeOK,
		Details: map[string]any{"recording": map[string]any{"id": "rec1", "digest": sha256Digest([]byte("original")), "outcome": "stored"}}})
	res := generateScenario(t, tl, Period{From: t0, To: t0.Add(time.Hour)})
	var b bytes.Buffer
	err := WriteBundle(context.Background(), &b, res, BundleOptions{VerifierKey: verifierKey(t, tl), Recordings: memRecordings{content: map[string][]byte{"rec1": []byte("changed")}}})
	if err == nil || !strings.Contains(err.Error(), "recording rec1 of request r has digest") {
		t.Fatalf("%v", err)
	}
}

package audit_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

func exportSegment(t *testing.T, e *env, from, to int64) []byte {
	t.Helper()
	st := e.st
	if st == nil {
		if err := e.open(t); err != nil {
			t.Fatal(err)
		}
		st = e.st
	}
	var buf bytes.Buffer
	if err := audit.Export(context.Background(), st, &buf, from, to); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSegment(t *testing.T) {
	e := tamperEnv(t) // 50 entries, checkpoints 1, 11, 21, 31, 41, 50
	whole := exportSegment(t, e, 0, 50)
	rep, err := audit.VerifySegment(context.Background(), bytes.NewReader(whole), e.ver)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 0 || rep.Size != 50 || rep.Checkpoints != 6 {
		t.Fatalf("report = %+v", rep)
	}
	mid := exportSegment(t, e, 21, 41)
	rep, err = audit.VerifySegment(context.Background(), bytes.NewReader(mid), e.ver)
	if err != nil {
		t.Fatalf("segment [21, 41): %v", err)
	}
	if rep.From != 21 || rep.Size != 41 || rep.Checkpoints != 3 {
		t.Fatalf("report = %+v", rep)
	}
	if err := audit.Export(context.Background(), e.st, &bytes.Buffer{}, 5, 41); err == nil {
		t.Fatal("export from a size that is not a checkpoint succeeded")
	}

	lines := func(b []byte) []string { return strings.SplitAfter(string(b), "\n") }
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "")) }
	tests := []struct {
		name   string
		seg    []byte
		mangle func(ls []string) []string
		want   string
	}{
		{"entry byte changed", mid, func(ls []string) []string {
			// header, 3 checkpoints, then entries 21..40: line 4+9 is entry 30.
			ls[4+9] = strings.Replace(ls[4+9], "req-", "reQ-", 1)
			return ls
		}, "checkpoint of size 31: signed tree hash does not match the entries: an entry in [21, 31)"},
		{"entry line deleted", mid, func(ls []string) []string {
			return append(ls[:4+5], ls[4+6:]...)
		}, "entry 27 found where entry 26 was expected"},
		{"entries swapped", whole, func(ls []string) []string {
			ls[7+3], ls[7+4] = ls[7+4], ls[7+3]
			return ls
		}, "entry 4 found where entry 3 was expected"},
		{"entries swapped with their seq", whole, func(ls []string) []string {
			a, b := ls[7+3], ls[7+4]
			ls[7+3] = strings.Replace(b, `"seq":4`, `"seq":3`, 1)
			ls[7+4] = strings.Replace(a, `"seq":3`, `"seq":4`, 1)
			return ls
		}, "checkpoint of size 11: signed tree hash does not match the entries: an entry in [1, 11)"},
		{"tail truncated", whole, func(ls []string) []string {
			return ls[:len(ls)-4]
		}, "segment ends after entry 46 but its header says it runs to 50"},
		{"end checkpoint removed", whole, func(ls []string) []string {
			return append(ls[:6], ls[7:]...)
		}, "no signed checkpoint of size 50 covers its end"},
		{"checkpoint forged", whole, func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `\n21\n`, `\n22\n`, 1)
			return ls
		}, "checkpoint 3: audit: checkpoint signature invalid"},
		{"frontier changed", mid, func(ls []string) []string {
			i := strings.Index(ls[0], `"frontier":["`) + len(`"frontier":["`)
			ls[0] = ls[0][:i] + strings.Repeat("A", 43) + "=" + ls[0][i+44:]
			return ls
		}, "the frontier hashes in the header do not match the checkpoint of size 21"},
		{"header mangled", mid, func(ls []string) []string {
			ls[0] = strings.Replace(ls[0], `"frontier":["`, `"frontier":["!`, 1)
			return ls
		}, "bad header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seg := join(tc.mangle(lines(append([]byte(nil), tc.seg...))))
			if bytes.Equal(seg, tc.seg) {
				t.Fatal("test bug: mangle changed nothing")
			}
			_, err := audit.VerifySegment(context.Background(), bytes.NewReader(seg), e.ver)
			var d *audit.Divergence
			if !errors.As(err, &d) || !strings.Contains(d.Msg, tc.want) {
				t.Fatalf("err = %v, want a divergence containing %q", err, tc.want)
			}
		})
	}
}

package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// TestEntryRecorded: Entry.Recorded is exactly DecodeEntry(Marshal(e)) —
// the exporter maps fed entries through it instead of decoding their
// bytes, and an exported event must not depend on which it did.
func TestEntryRecorded(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	full := &identity.Principal{Issuer: "https://idp", Subject: "alice", Kind: identity.KindUser, Name: "Alice",
		Email: "alice@example.com", Groups: []string{"ml-users", "ops"}, Claims: map[string]any{"dept": "x"},
		AuthMethod: "oidc", CredentialID: "0123456789abcdef", ExpiresAt: time.Now()}
	base := func() *audit.Entry {
		return &audit.Entry{V: audit.SchemaVersion, Kind: audit.KindRequestCompleted, ID: "id-1", Seq: 7,
			Time: time.Now().In(loc), RequestID: "req-1", Instance: "gw-1", Route: "openai", Method: "POST",
			Path: "/v1/chat/completions", Model: "llama-3", RequestSHA256: "ab", Status: 200, BytesIn: 120,
			BytesOut: 2048, Upstream: 3 * time.Millisecond, Gateway: 800 * time.Microsecond,
			ResponseSHA256: "cd", Outcome: audit.OutcomeOK}
	}
	tests := []struct {
		name string
		mod  func(e *audit.Entry)
		ok   bool
	}{
		{"plain", func(e *audit.Entry) {}, true},
		{"principal (email, claims and expiry are not recorded)", func(e *audit.Entry) { e.Principal = full }, true},
		{"principal, empty groups", func(e *audit.Entry) {
			p := *full
			p.Groups = []string{}
			e.Principal = &p
		}, true},
		{"decision and masking", func(e *audit.Entry) {
			e.Decision = &audit.Decision{Action: "allow", Rule: "chat-ok", PolicyVersion: "sha256:00", Reason: "<ok> & fine"}
			e.Masking = []audit.MaskAction{{Rule: "entities.EMAIL", Entity: "EMAIL", Location: "choices[0]", Count: 2, Fingerprint: "9f"}}
		}, true},
		{"empty masking and maps", func(e *audit.Entry) {
			e.Masking = []audit.MaskAction{}
			e.Params = map[string]any{}
			e.Details = map[string]any{}
		}, true},
		{"numbers of every kind", func(e *audit.Entry) {
			e.Params = map[string]any{"temperature": 0.2, "max_tokens": 512, "n": int64(1), "top_p": float32(0.9),
				"big": 1e21, "small": 1e-7, "neg": -0.0, "u": uint(3), "u64": uint64(math.MaxUint64), "i32": int32(-4),
				"u32": uint32(5), "num": json.Number("1.50"), "empty": json.Number(""), "whole": 3.0}
		}, true},
		{"nested values", func(e *audit.Entry) {
			e.Params = map[string]any{"stream": true, "stop": []string{"a", "b"}, "none": nil,
				"meta": map[string]string{"k": "v"}, "tools": []any{map[string]any{"name": "f", "args": []any{1, "x", nil}}},
				"nil_map": map[string]any(nil), "nil_slice": []any(nil), "nil_strings": []string(nil),
				"empty_map": map[string]any{}, "empty_slice": []any{}, "empty_strings": []string{}}
			e.Details = map[string]any{"recording_digest": "sha256:11", "applied": false, "size": int64(44),
				"line\u2028sep": "</script>"}
		}, true},
		{"invalid UTF-8 in a field", func(e *audit.Entry) { e.Path = "/v1/\xff" }, false},
		{"invalid UTF-8 in a map key", func(e *audit.Entry) { e.Details = map[string]any{"\xfe": "x"} }, false},
		{"invalid UTF-8 in a group", func(e *audit.Entry) {
			p := *full
			p.Groups = []string{"\xff"}
			e.Principal = &p
		}, false},
		{"a value of another type", func(e *audit.Entry) { e.Details = map[string]any{"t": time.Unix(0, 0)} }, false},
		{"a value of another type, nested", func(e *audit.Entry) {
			e.Params = map[string]any{"a": []any{map[string]any{"b": []uint32{1}}}}
		}, false},
		{"invalid UTF-8 in a nested string list", func(e *audit.Entry) {
			e.Details = map[string]any{"a": map[string]any{"b": []string{"ok", "\xff"}}}
		}, false},
		{"invalid UTF-8 in a string map value", func(e *audit.Entry) { e.Params = map[string]any{"m": map[string]string{"k": "\xc3("}} }, false},
		{"invalid UTF-8 in the decision", func(e *audit.Entry) { e.Decision = &audit.Decision{Action: "allow", Reason: "\xff"} }, false},
		{"invalid UTF-8 in masking", func(e *audit.Entry) { e.Masking = []audit.MaskAction{{Rule: "r", Location: "\xff"}} }, false},
		{"nesting deeper than 32", func(e *audit.Entry) {
			var v any = "x"
			for range 40 {
				v = []any{v}
			}
			e.Params = map[string]any{"deep": v}
		}, false},
		{"nesting of 31", func(e *audit.Entry) {
			var v any = "x"
			for range 30 {
				v = map[string]any{"k": v}
			}
			e.Params = map[string]any{"deep": v}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			tt.mod(e)
			before, err := audit.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := e.Recorded()
			if ok != tt.ok {
				t.Fatalf("Recorded ok = %v, want %v", ok, tt.ok)
			}
			if r := e.Recordable(); r != ok {
				t.Fatalf("Recordable = %v, Recorded ok = %v", r, ok)
			}
			if after, _ := audit.Marshal(e); !bytes.Equal(before, after) {
				t.Fatal("Recorded changed the entry")
			}
			if !ok {
				return
			}
			want, err := audit.DecodeEntry(e.Seq, before)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				t.Fatalf("Recorded differs from decoding the bytes:\n got %s %#v\nwant %s %#v", gb, got, wb, want)
			}
			if again, err := audit.Marshal(got); err != nil || !bytes.Equal(again, before) {
				t.Fatalf("Recorded entry encodes differently: %s, %v", again, err)
			}
		})
	}
}

// TestOnCommit: the function set with OnCommit receives every batch
// this process commits, with the sequence numbers, bytes and entries
// the store holds; after OnCommit(nil) it receives nothing.
func TestOnCommit(t *testing.T) {
	env := newEnv(t, nil)
	ctx := context.Background()
	var mu sync.Mutex
	var fed []audit.Record
	env.log.OnCommit(func(recs []audit.Record) {
		mu.Lock()
		fed = append(fed, recs...)
		mu.Unlock()
	})
	size, err := env.st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &audit.Entry{Kind: audit.KindRequestAdmitted, Time: time.Now(), RequestID: "r", Status: i}
			if _, err := env.log.Append(ctx, e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// f runs right after a batch's appends are answered, so the last of
	// the 50 may return before its batch is fed; batches are fed in
	// order, each before the next is answered: once one more append is
	// answered, the 50 have been fed.
	if _, err := env.log.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := fed
	mu.Unlock()
	if len(got) < 50 {
		t.Fatalf("fed %d records, want 50", len(got))
	}
	got = got[:50]
	stored, err := env.st.ReadRecords(ctx, size, size+50)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Seq != size+int64(i) || r.Seq != stored[i].Seq || !bytes.Equal(r.Data, stored[i].Data) ||
			r.Entry == nil || r.Entry.Seq != r.Seq {
			t.Fatalf("fed record %d: seq %d, want %d with the stored bytes and entry", i, r.Seq, stored[i].Seq)
		}
		if b, err := audit.Marshal(r.Entry); err != nil || !bytes.Equal(b, r.Data) {
			t.Fatalf("fed entry %d does not encode to its bytes: %v", r.Seq, err)
		}
	}
	env.log.OnCommit(nil)
	if _, err := env.log.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, Time: time.Now(), RequestID: "after-nil"}); err != nil {
		t.Fatal(err)
	}
	// One more, so that the one above would have been fed by now.
	if _, err := env.log.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range fed {
		if r.Entry.RequestID == "after-nil" {
			t.Fatalf("record %d fed after OnCommit(nil)", r.Seq)
		}
	}
}

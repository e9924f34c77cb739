package audit_test

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// A fixed test key (never use it for anything else).
const exampleSignerKey = "PRIVATE+KEY+warden-audit+cb506839+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"

func ExampleMarshal() {
	e := &audit.Entry{
		V:         1,
		Time:      time.Date(2026, 11, 26, 20, 0, 0, 500, time.UTC),
		Kind:      audit.KindRequestAdmitted,
		ID:        "0193a1b2-0000-7000-8000-000000000001",
		RequestID: "req-1",
		Principal: &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user"},
		Model:     "llama-3",
		Params:    map[string]any{"temperature": 0.2, "max_tokens": 256},
		Decision:  &audit.Decision{Action: "allow", Rule: "default"},
	}
	b, _ := audit.Marshal(e)
	fmt.Println(string(b))
	fmt.Println(tlog.RecordHash(b))
	// Output:
	// {"decision":{"action":"allow","rule":"default"},"id":"0193a1b2-0000-7000-8000-000000000001","kind":"request.admitted","model":"llama-3","params":{"max_tokens":256,"temperature":0.2},"principal":{"iss":"https://idp.example","kind":"user","sub":"alice"},"request_id":"req-1","time":"2026-11-26T20:00:00.0000005Z","v":1}
	// zaWNPhOHyxvyEpY/D1j23g16NZKWu8t5qg6GXbju4B0=
}

func ExampleSignCheckpoint() {
	s, err := note.NewSigner(exampleSignerKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	var h tlog.Hash
	copy(h[:], "an example tree hash, 32 bytes!!")
	c, _ := audit.SignCheckpoint(s, 1500, h, time.Date(2026, 11, 26, 20, 10, 0, 123456789, time.UTC))
	fmt.Print(string(c.Note))
	// Output:
	// warden-audit
	// 1500
	// YW4gZXhhbXBsZSB0cmVlIGhhc2gsIDMyIGJ5dGVzISE=
	// time 2026-11-26T20:10:00.123456789Z
	//
	// — warden-audit y1BoOQHv59DA50ZGt70m0NmBHUMv8XG03vO3rAE/LizaETWmGOkWRKd9b7CijmNuGGvZFcmvx9ruZQtjjih5eDD/Lw8=
}

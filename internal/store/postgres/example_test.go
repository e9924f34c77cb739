package postgres_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/postgres"
)

// Each gateway replica opens the shared store and an audit.Log over it.
// The Log sees that the store is an audit.Queue: Append enqueues durably
// and returns Ref{Seq: -1}; whichever replica holds the advisory lock
// sequences the entries and signs checkpoints.
func Example() {
	ctx := context.Background()
	st, err := postgres.Open(ctx, os.Getenv("WARDEN_POSTGRES_DSN"), postgres.WithSchema("warden"))
	if err != nil {
		log.Fatal(err) // fail closed: no audit store, no gateway
	}
	defer st.Close()
	signer, verifier, err := audit.LoadSigner("/var/lib/warden/keys/audit.signer")
	if err != nil {
		log.Fatal(err)
	}
	cfg := audit.Config{Store: "postgres", DSN: "(set)"}
	l, err := audit.Open(ctx, st, cfg, signer, verifier, audit.WithInstance("gw-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)

	ref, err := l.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "r-1"})
	if err != nil {
		log.Fatal(err) // the gateway answers 503
	}
	// Only if the caller needs the position in the log:
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	seq, err := st.WaitSeq(wctx, ref.ID)
	log.Println(seq, err)
}

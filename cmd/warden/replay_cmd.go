package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
)

// maxReplay bounds the recording a replay fetches.
const maxReplay = 256 << 20

// adminFlags are the admin API client flags shared by replay and
// recordings.
type adminFlags struct{ url, token string }

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.url, "admin-url", "http://127.0.0.1:9090", "admin listener URL")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "bearer token (default: $WARDEN_TOKEN)")
}

func (f *adminFlags) client() (*admin.Client, error) {
	t := f.token
	if t == "" {
		t = os.Getenv("WARDEN_TOKEN")
	}
	if t == "" {
		return nil, errors.New("a token is required: --token or WARDEN_TOKEN")
	}
	return &admin.Client{BaseURL: f.url, Token: t}, nil
}

type replayFlags struct {
	admin          adminFlags
	speed, format  string
	id, key, data  string
	verify         bool
	verifyWait     time.Duration
	stdout, stderr io.Writer
}

// newReplayCmd is `warden replay REQUEST_ID`: fetch a request's recording
// through the admin API (auditor role) and print the conversation with
// its original timing, as text, JSON lines or HAR 1.2. --verify checks,
// on this machine, that the content's digest is the one the request's
// terminal audit entry carries and that this entry is included in a
// checkpoint signed by the audit key.
func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay REQUEST_ID [--speed 1|4|max] [--verify] [--format text|json|har]",
		Short: "Replay a recorded request: what the caller sent, and the answer as it streamed",
		Long: `Replay fetches the recording of REQUEST_ID through the admin API (auditor
role) and prints the request's messages, then the answer with the timing the
caller saw it (--speed 1), four times faster (--speed 4) or at once (max).
--format json writes one JSON line per event with its offset; har writes an
HTTP Archive 1.2 document (with the SSE events' timings) that browsers'
developer tools import.

--verify recomputes the digest of the fetched recording, compares it with
the digest in the request's terminal audit entry, and checks that entry's
inclusion proof against a checkpoint signed by the audit key (--key, default
<data-dir>/keys/audit.verifier). It exits 1 when anything does not hold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.stdout, f.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runReplay(cmd.Context(), args[0], f)
		},
	}
	f.admin.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.speed, "speed", "1", "playback speed: 1, 4 (or any factor) or max")
	fl.StringVar(&f.format, "format", "text", "text, json or har")
	fl.StringVar(&f.id, "id", "", "recording id, when the request id has several recordings")
	fl.BoolVar(&f.verify, "verify", false, "check the digest against the audit log entry and its inclusion proof")
	fl.DurationVar(&f.verifyWait, "verify-wait", 15*time.Second, "with --verify: how long to wait for a checkpoint to cover a fresh entry")
	fl.StringVar(&f.key, "key", "", "audit verifier key file (default <data-dir>/keys/audit.verifier)")
	fl.StringVar(&f.data, "data-dir", "./warden-data", "data directory holding keys/audit.verifier")
	return cmd
}

func runReplay(ctx context.Context, requestID string, f replayFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	speed, err := recording.ParseSpeed(f.speed)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	format, err := recording.ParseFormat(f.format)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	c, err := f.admin.client()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	path := "/v1/recordings/" + url.PathEscape(requestID)
	q := ""
	if f.id != "" {
		q = "?id=" + url.QueryEscape(f.id)
	}
	var view admin.RecordingView
	if err := c.Do(ctx, "GET", path+q, nil, &view); err != nil {
		return err
	}
	if q == "" {
		q = "?id=" + url.QueryEscape(view.Recording.ID)
	}
	if view.Recording.Erased != nil {
		e := view.Recording.Erased
		return fmt.Errorf("recording %s was erased on %s by %s (%s); its content cannot be read", view.Recording.ID, e.At.Format(time.RFC3339), e.By, e.Reason)
	}
	raw, _, err := c.GetRaw(ctx, path+"/content"+q, maxReplay)
	if err != nil {
		var ae *admin.APIError
		if f.verify && errors.As(err, &ae) && ae.Status == 409 {
			fmt.Fprintf(f.stdout, "VERIFY FAILED: %s\n", ae.Message)
			return &exitError{code: 1, err: errors.New("the recording does not verify")}
		}
		return err
	}
	rec, digest, err := recording.ReadAll(bytes.NewReader(raw), maxReplay)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("the recording served is malformed: %w", err)}
	}
	if f.verify {
		if err := f.verifyReplay(ctx, c, path+q, &view, digest); err != nil {
			fmt.Fprintf(f.stdout, "VERIFY FAILED: %v\n", err)
			return &exitError{code: 1, err: errors.New("the recording does not verify")}
		}
	}
	if format == recording.FormatHAR {
		return recording.WriteHAR(f.stdout, currentBuild().Version, recording.HAREntry{Recording: rec, Digest: digest})
	}
	p := recording.Player{Speed: speed, Format: format}
	return p.Play(ctx, f.stdout, rec)
}

// verifyReplay checks digest against the terminal entry, and the entry's
// inclusion proof against a checkpoint signed by the audit key — all on
// this machine, trusting only the verifier key. A fresh entry may not be
// covered by a checkpoint yet: it asks again until --verify-wait.
func (f replayFlags) verifyReplay(ctx context.Context, c *admin.Client, path string, view *admin.RecordingView, digest recording.Digest) error {
	keyPath := f.key
	if keyPath == "" {
		_, keyPath = audit.KeyPaths(f.data)
	}
	v, err := audit.LoadVerifier(keyPath)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(f.verifyWait)
	for view.Terminal == nil || view.Terminal.Pending {
		if time.Now().After(deadline) {
			if view.Terminal == nil {
				return errors.New("no terminal audit entry names this recording")
			}
			return fmt.Errorf("no checkpoint covers the terminal entry %d yet", view.Terminal.Seq)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		*view = admin.RecordingView{} // omitted fields (pending) must not linger
		if err := c.Do(ctx, "GET", path, nil, view); err != nil {
			return err
		}
	}
	t := view.Terminal
	e, err := audit.ParseEntry(t.Seq, t.Entry)
	if err != nil {
		return err
	}
	id, logDigest := admin.RecordingOf(e)
	if id != view.Recording.ID {
		return fmt.Errorf("terminal entry %d names recording %q, not %s", t.Seq, id, view.Recording.ID)
	}
	if logDigest != digest.String() {
		return fmt.Errorf("the recording's digest %s differs from the audit log's %s (entry %d)", digest, logDigest, t.Seq)
	}
	cp, err := audit.OpenCheckpoint([]byte(t.Checkpoint), v)
	if err != nil {
		return err
	}
	if cp.Size != t.TreeSize {
		return fmt.Errorf("the checkpoint is of size %d, the proof of size %d", cp.Size, t.TreeSize)
	}
	if err := audit.CheckEntryProof(t.Proof, cp, t.Seq, t.Entry); err != nil {
		return err
	}
	fmt.Fprintf(f.stderr, "verified: recording %s has digest %s, the one in audit entry %d, included in the signed checkpoint of size %d\n",
		view.Recording.ID, digest, t.Seq, cp.Size)
	return nil
}

// newRecordingsCmd is `warden recordings erase`: crypto-shredding through
// the admin API (admin role); each erasure is recorded in the audit log
// as recording.erased, naming who, when and why.
func newRecordingsCmd() *cobra.Command {
	var af adminFlags
	cmd := &cobra.Command{
		Use:   "recordings",
		Short: "Manage session recordings through the admin API",
	}
	af.register(cmd)
	var principal, requestID, before, reason string
	var asJSON bool
	erase := &cobra.Command{
		Use:   "erase --principal P [--before T] --reason R",
		Short: "Erase recordings (destroy their data keys); the audit log keeps their digests and records the erasure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" && requestID == "" {
				return &exitError{code: 2, err: errors.New("--principal or --request-id is required")}
			}
			if reason == "" {
				return &exitError{code: 2, err: errors.New("--reason is required")}
			}
			if before != "" {
				if _, err := time.Parse(time.RFC3339Nano, before); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--before must be an RFC 3339 time: %w", err)}
				}
			}
			c, err := af.client()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			var out struct {
				Erased []admin.ErasedView `json:"erased"`
			}
			body := admin.EraseBody{Principal: principal, RequestID: requestID, Before: before, Reason: reason}
			if err := c.Do(cmd.Context(), "POST", "/v1/recordings/erase", body, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, out)
			}
			for _, e := range out.Erased {
				fmt.Fprintf(w, "erased %s (request %s, %s, started %s)\n", e.ID, e.RequestID, e.Digest, e.StartedAt.Format(time.RFC3339))
			}
			fmt.Fprintf(w, "%d recordings erased\n", len(out.Erased))
			return nil
		},
	}
	erase.Flags().StringVar(&principal, "principal", "", "the recorded caller's subject")
	erase.Flags().StringVar(&requestID, "request-id", "", "one request's recordings")
	erase.Flags().StringVar(&before, "before", "", "only recordings started before this RFC 3339 time")
	erase.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	erase.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(erase)
	return cmd
}

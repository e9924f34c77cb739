package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors of the add-checkpoint call (C2SP tlog-witness), for errors.Is.
// A 409 Conflict is a *ConflictError; other unexpected statuses are a
// *StatusError; network failures are returned as the HTTP client gives
// them.
var (
	// ErrUnknownLog (404): the witness is not configured for this origin.
	ErrUnknownLog = errors.New("the witness does not know this log's origin (404): add the log (origin and verifier key) to the witness's configuration")
	// ErrForbidden (403): no valid signature by a key the witness trusts
	// for the origin.
	ErrForbidden = errors.New("the witness does not accept the log's signature (403): its configured verifier key for this origin is not the gateway's")
	// ErrInconsistent (422): the consistency proof does not verify, or a
	// checkpoint of the witness's own size has another tree hash. The log
	// presented is not an extension of what the witness cosigned before.
	ErrInconsistent = errors.New("the witness refused the checkpoint as inconsistent with the one it cosigned before (422)")
	// ErrBadRequest (400): the witness found the request malformed (for
	// example an old size beyond the checkpoint's).
	ErrBadRequest = errors.New("the witness rejected the request as malformed (400)")
	// ErrPushback (429): the witness is overloaded; try again later.
	ErrPushback = errors.New("the witness is overloaded (429)")
	// ErrBadResponse: a 200 answer without a valid cosignature by the
	// configured witness key.
	ErrBadResponse = errors.New("the witness answered without a valid cosignature by its configured key")
)

// ConflictError is the 409 answer: the old size sent is not the size of
// the latest checkpoint the witness cosigned for this log, which it
// returns.
type ConflictError struct {
	// Size is the witness's latest cosigned tree size for the origin.
	Size int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the witness's latest cosigned tree for this log has size %d (409)", e.Size)
}

// StatusError is an answer with a status the protocol does not define
// (5xx, or anything unexpected).
type StatusError struct {
	Code int
	// Body is the start of the answer, for the log (witness answers hold
	// nothing secret).
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("the witness answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("the witness answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// maxResponse bounds a witness's answer.
const maxResponse = 64 << 10

// DefaultTimeout bounds one add-checkpoint call when Client.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Client calls one witness's add-checkpoint endpoint.
type Client struct {
	// URL is the witness's submission prefix; the call goes to
	// URL + "/add-checkpoint".
	URL string
	// Key verifies the witness's cosignatures.
	Key *Verifier
	// HTTP is the HTTP client (nil: a default client).
	HTTP *http.Client
	// Timeout bounds one call (0: DefaultTimeout).
	Timeout time.Duration
}

// AddCheckpoint submits cp with a consistency proof from oldSize (the
// size of the latest checkpoint the witness cosigned, 0 if none) and
// returns cp cosigned by the witness. The answer's cosignature must verify
// against c.Key over cp's text (ErrBadResponse otherwise); logKey is the
// log's verifier. Protocol refusals are the errors above.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize int64, proof tlog.TreeProof, cp Checkpoint, logKey note.Verifier) (Cosigned, error) {
	if oldSize < 0 || oldSize > cp.Size {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: old size %d outside [0, %d]", oldSize, cp.Size)
	}
	if len(proof) > 63 {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: proof of %d hashes (at most 63)", len(proof))
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		body.WriteByte('\n')
	}
	body.WriteByte('\n')
	body.Write(cp.Note)

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", &body)
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "warden")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: read answer: %w", err)
	}
	if len(answer) > maxResponse {
		return Cosigned{}, fmt.Errorf("witness: add-checkpoint: answer larger than %d bytes: %w", maxResponse, ErrBadResponse)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return c.cosigned(answer, cp, logKey)
	case http.StatusConflict:
		s := strings.TrimSuffix(string(answer), "\n")
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
			return Cosigned{}, &StatusError{Code: resp.StatusCode, Body: snippet(answer)}
		}
		return Cosigned{}, &ConflictError{Size: n}
	case http.StatusNotFound:
		return Cosigned{}, ErrUnknownLog
	case http.StatusForbidden:
		return Cosigned{}, ErrForbidden
	case http.StatusUnprocessableEntity:
		return Cosigned{}, ErrInconsistent
	case http.StatusBadRequest:
		return Cosigned{}, ErrBadRequest
	case http.StatusTooManyRequests:
		return Cosigned{}, ErrPushback
	}
	return Cosigned{}, &StatusError{Code: resp.StatusCode, Body: snippet(answer)}
}

// cosigned checks a 200 answer: note signature lines, one of which is a
// valid cosignature by the configured key over cp.
func (c *Client) cosigned(answer []byte, cp Checkpoint, logKey note.Verifier) (Cosigned, error) {
	if len(answer) == 0 || answer[len(answer)-1] != '\n' {
		return Cosigned{}, fmt.Errorf("witness: %w: the answer is not signature lines", ErrBadResponse)
	}
	for _, line := range strings.SplitAfter(string(answer), "\n") {
		if line != "" && !strings.HasPrefix(line, "— ") {
			return Cosigned{}, fmt.Errorf("witness: %w: the answer is not signature lines", ErrBadResponse)
		}
	}
	co, err := OpenCosigned(append(append([]byte{}, cp.Note...), answer...), logKey, []*Verifier{c.Key})
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: %w: %v", ErrBadResponse, err)
	}
	if co.Size != cp.Size || co.Hash != cp.Hash || len(co.Sigs) == 0 {
		return Cosigned{}, fmt.Errorf("witness: %w: no cosignature by %s (key %08x) — is the configured key the witness's?", ErrBadResponse, c.Key.Name(), c.Key.KeyHash())
	}
	return co, nil
}

// snippet is the start of an answer, printable, for error messages.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

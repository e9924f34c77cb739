package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AheadError: the witness has cosigned a larger tree for this log than
// the newest checkpoint the log has. The log lost entries or checkpoints
// it once had (truncated or rolled back).
type AheadError struct {
	// WitnessSize is the witness's latest cosigned size; Size the log's
	// newest checkpoint.
	WitnessSize, Size int64
}

func (e *AheadError) Error() string {
	return fmt.Sprintf("the witness has cosigned a tree of size %d for this log, larger than the log's newest checkpoint (size %d)", e.WitnessSize, e.Size)
}

// Submitter submits the log's checkpoints to its witnesses and keeps what
// they cosign. It never fails the gateway: refusals and outages are
// logged, counted in metrics and retried.
type Submitter struct {
	src    Source
	st     Store
	logKey note.Verifier
	pol    Policy
	log    *slog.Logger
	hc     *http.Client
	m      *metrics
	peers  []*peer
	ev     Evidence

	fileMu sync.Mutex
	file   Cosigned // the newest cosigned checkpoint written to CosignedFile
}

type peer struct {
	name string
	c    *Client
	wake chan struct{}

	mu       sync.Mutex // held during a submission round
	known    int64      // the witness's latest cosigned size, as far as we know
	cosigned int64      // the largest size this witness cosigned that we kept
	// refusing is set from a refusal recorded as evidence until the
	// witness cosigns again.
	refusing atomic.Bool
}

// Option configures New.
type Option func(*Submitter)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Submitter) { s.log = l } }

// WithEvidence records refusals in the audit log (witness.refused).
func WithEvidence(ev Evidence) Option { return func(s *Submitter) { s.ev = ev } }

// WithHTTPClient sets the HTTP client used to reach witnesses.
func WithHTTPClient(c *http.Client) Option { return func(s *Submitter) { s.hc = c } }

// New returns a submitter for the witnesses eps (already validated by
// ValidateEndpoints; defaults applied). st may be nil (cosignatures are
// then only written to the cosigned file). logKey verifies the log's
// checkpoints.
func New(src Source, st Store, logKey note.Verifier, eps []Endpoint, pol Policy, opts ...Option) (*Submitter, error) {
	pol.SetDefaults()
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	s := &Submitter{src: src, st: st, logKey: logKey, pol: pol, log: slog.Default(), m: newMetrics()}
	for _, o := range opts {
		o(s)
	}
	for i, e := range eps {
		e.SetDefaults()
		v, err := NewVerifier(e.Key)
		if err != nil {
			return nil, fmt.Errorf("witness %d: %w", i, err)
		}
		p := &peer{name: e.Name, wake: make(chan struct{}, 1),
			c: &Client{URL: e.URL, Key: v, HTTP: s.hc, Timeout: e.Timeout}}
		s.peers = append(s.peers, p)
		s.m.up.WithLabelValues(p.name).Set(0)
	}
	return s, nil
}

// Collector returns the submitter's Prometheus metrics.
func (s *Submitter) Collector() prometheus.Collector { return s.m }

// Verifiers returns the configured witnesses' keys.
func (s *Submitter) Verifiers() []*Verifier {
	out := make([]*Verifier, len(s.peers))
	for i, p := range s.peers {
		out[i] = p.c.Key
	}
	return out
}

// Wake tells the submitter that a new checkpoint was signed (with submit:
// every_checkpoint it is submitted now rather than at the next poll).
// It never blocks.
func (s *Submitter) Wake() {
	for _, p := range s.peers {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Run submits checkpoints until ctx ends: each witness in its own
// goroutine, so a slow witness does not delay the others. After a failure
// a witness is retried with a backoff (1s doubling, at most
// Policy.Interval).
func (s *Submitter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if w, ok := s.src.(Waiter); ok && s.pol.Submit == SubmitEveryCheckpoint {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.follow(ctx, w)
		}()
	}
	for _, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, p)
		}()
	}
	wg.Wait()
}

// follow wakes the witnesses' loops on every new checkpoint.
func (s *Submitter) follow(ctx context.Context, w Waiter) {
	after := int64(0)
	for ctx.Err() == nil {
		c, err := w.WaitCheckpoint(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("witness: waiting for checkpoints failed; polling meanwhile", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(s.pol.Poll):
				}
			}
			continue
		}
		after = c.Size
		s.Wake()
	}
}

func (s *Submitter) loop(ctx context.Context, p *peer) {
	period := s.pol.Poll
	if s.pol.Submit == SubmitInterval {
		period = s.pol.Interval
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	retry := time.NewTimer(0) // a first round right away
	defer retry.Stop()
	backoff := time.Duration(0)
	var notBefore time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			if s.pol.Submit == SubmitInterval || time.Now().Before(notBefore) {
				continue
			}
		case <-tick.C:
			if time.Now().Before(notBefore) {
				continue
			}
		case <-retry.C:
		}
		res := s.round(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if res.Err == nil {
			backoff, notBefore = 0, time.Time{}
			continue
		}
		backoff = min(max(2*backoff, time.Second), s.pol.Interval)
		notBefore = time.Now().Add(backoff)
		retry.Reset(backoff)
	}
}

// Result is the outcome of one submission to one witness.
type Result struct {
	// Witness is the witness's configured name.
	Witness string
	// Size is the checkpoint size submitted (0 if nothing was).
	Size int64
	// Outcome is one of the Result* constants, or "" when there was
	// nothing new to submit.
	Outcome string
	// Cosigned is the cosigned checkpoint when Outcome is ResultCosigned.
	Cosigned Cosigned
	// Err says why a submission failed (nil when cosigned or idle).
	Err error
}

// Flush submits the newest checkpoint to every witness now and returns
// the results (used at shutdown, after the final checkpoint).
func (s *Submitter) Flush(ctx context.Context) []Result {
	out := make([]Result, len(s.peers))
	var wg sync.WaitGroup
	for i, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.round(ctx, p)
		}()
	}
	wg.Wait()
	return out
}

// round submits the newest checkpoint to p unless p already cosigned it.
func (s *Submitter) round(ctx context.Context, p *peer) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp, err := s.src.Latest(ctx)
	if err != nil {
		s.log.Error("witness: read the newest checkpoint", "witness", p.name, "err", err)
		return Result{Witness: p.name, Err: err}
	}
	if cp.Note == nil || cp.Size <= p.cosigned {
		return Result{Witness: p.name}
	}
	if s.st != nil {
		// Another replica (or an earlier run) may have had it cosigned.
		rows, err := s.st.Cosignatures(ctx, p.c.Key.Name(), 0, 1)
		if err == nil && len(rows) == 1 && rows[0].Size > p.cosigned {
			p.cosigned, p.known = rows[0].Size, max(p.known, rows[0].Size)
			if cp.Size <= p.cosigned {
				return Result{Witness: p.name}
			}
		}
	}
	co, err := s.submit(ctx, p, cp)
	var ahead *AheadError
	if errors.As(err, &ahead) {
		// This replica may only lag behind the store: look again once.
		if cp2, err2 := s.src.Latest(ctx); err2 == nil && cp2.Size >= ahead.WitnessSize {
			cp = cp2
			co, err = s.submit(ctx, p, cp)
		}
	}
	return s.record(ctx, p, cp, co, err)
}

// submit sends cp with a proof from the witness's size as we know it;
// a 409 teaches the witness's real size and the call is repeated (twice
// at most).
func (s *Submitter) submit(ctx context.Context, p *peer, cp Checkpoint) (Cosigned, error) {
	old := max(p.known, 0)
	for attempt := 0; attempt < 3; attempt++ {
		if old > cp.Size {
			return Cosigned{}, &AheadError{WitnessSize: old, Size: cp.Size}
		}
		var proof tlog.TreeProof
		if old > 0 && old < cp.Size {
			var err error
			if proof, err = s.src.ConsistencyProof(ctx, old, cp.Size); err != nil {
				return Cosigned{}, fmt.Errorf("witness: consistency proof %d..%d: %w", old, cp.Size, err)
			}
		}
		co, err := p.c.AddCheckpoint(ctx, old, proof, cp, s.logKey)
		var ce *ConflictError
		if errors.As(err, &ce) {
			p.known, old = ce.Size, ce.Size
			continue
		}
		if err == nil {
			p.known = cp.Size
		}
		return co, err
	}
	return Cosigned{}, fmt.Errorf("witness: the witness keeps answering 409 (its size changes under us: another submitter?): last size %d", old)
}

// classify maps a submission error to a result label.
func classify(err error) string {
	var ahead *AheadError
	var se *StatusError
	switch {
	case err == nil:
		return ResultCosigned
	case errors.As(err, &ahead), errors.Is(err, ErrInconsistent):
		return ResultRefused
	case errors.Is(err, ErrUnknownLog), errors.Is(err, ErrForbidden), errors.Is(err, ErrBadResponse), errors.Is(err, ErrBadRequest):
		return ResultRejected
	case errors.As(err, &se) && se.Code < 500:
		return ResultRejected
	}
	return ResultUnreachable
}

// record counts, logs and keeps the outcome of a submission.
func (s *Submitter) record(ctx context.Context, p *peer, cp Checkpoint, co Cosigned, err error) Result {
	res := Result{Witness: p.name, Size: cp.Size, Outcome: classify(err), Err: err}
	// Counted last, once the outcome is logged and kept: whoever watches
	// the counter then also finds the log line and the stored cosignature.
	defer s.m.submissions.WithLabelValues(p.name, res.Outcome).Inc()
	switch res.Outcome {
	case ResultCosigned:
		res.Cosigned = co
		p.cosigned = cp.Size
		s.m.up.WithLabelValues(p.name).Set(1)
		s.m.size.WithLabelValues(p.name).Set(float64(cp.Size))
		s.m.last.WithLabelValues(p.name).Set(float64(co.Sigs[0].Time.Unix()))
		s.keep(ctx, p, co)
		p.refusing.Store(false)
		s.log.Debug("witness: checkpoint cosigned", "witness", p.name, "size", cp.Size)
	case ResultRefused:
		s.m.up.WithLabelValues(p.name).Set(0)
		s.log.Error("witness: THE WITNESS REFUSED THE AUDIT LOG'S CHECKPOINT: the log was rolled back, truncated or rewritten since the witness last cosigned it",
			"witness", p.name, "url", p.c.URL, "size", cp.Size, "witness_size", p.known, "err", err)
		s.recordRefusal(p, res)
	case ResultRejected:
		s.m.up.WithLabelValues(p.name).Set(0)
		s.log.Error("witness: the witness rejected the checkpoint (configuration)", "witness", p.name, "url", p.c.URL, "size", cp.Size, "err", err)
		s.recordRefusal(p, res)
	default:
		s.m.up.WithLabelValues(p.name).Set(0)
		s.log.Warn("witness: the witness is unreachable; the gateway keeps serving and retries", "witness", p.name, "url", p.c.URL, "size", cp.Size, "err", err)
	}
	return res
}

// keepTimeout bounds storing a cosignature once the witness gave it.
const keepTimeout = 5 * time.Second

// keep stores a cosignature and updates the cosigned file.
func (s *Submitter) keep(ctx context.Context, p *peer, co Cosigned) {
	// The witness has cosigned: keep the evidence even when the round's
	// context ends meanwhile. Shutdown cancels Run right after Log.Close
	// signed the final checkpoint; a round that had it cosigned then
	// failed to store it ("context canceled") and, the peer marked as
	// cosigned, the shutdown flush did not submit it again, so the final
	// cosignature was lost from the store.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keepTimeout)
	defer cancel()
	if s.st != nil {
		sig := co.Sigs[0]
		c := Cosignature{Size: co.Size, Witness: sig.Witness, KeyHash: sig.KeyHash, Time: sig.Time, Note: co.Bytes()}
		if err := s.st.PutCosignature(ctx, c); err != nil {
			s.log.Error("witness: could not store the cosignature (the witness has it; the next checkpoint's will be stored)", "witness", p.name, "size", co.Size, "err", err)
		}
	}
	if s.pol.CosignedFile == "" || s.pol.CosignedFile == "-" {
		return
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	switch {
	case s.file.Note == nil || co.Size > s.file.Size:
		s.file = co
	case co.Size == s.file.Size:
		m, err := merge(s.file, co)
		if err != nil {
			s.log.Error("witness: cosigned file", "err", err)
			return
		}
		s.file = m
	default:
		return
	}
	if err := writeFileAtomic(s.pol.CosignedFile, s.file.Bytes()); err != nil {
		s.log.Error("witness: write the cosigned checkpoint file", "path", s.pol.CosignedFile, "err", err)
	}
}

// Check is the start-up check, run before the gateway serves (and before
// it appends to the log). It refuses (returns a *Divergence) a store that
// is shorter than, or inconsistent with:
//   - the newest checkpoint cosigned by a configured witness that the
//     store itself keeps, or that the cosigned file holds;
//   - the view of each reachable witness, learnt by submitting the
//     store's newest checkpoint: a witness that has cosigned a larger tree
//     (409 with a larger size) or refuses the checkpoint as inconsistent
//     (422).
//
// Unreachable or misconfigured witnesses are logged and counted, not
// fatal. Checkpoints cosigned on the way are stored.
func (s *Submitter) Check(ctx context.Context, tr TreeReader) error {
	var extra [][]byte
	if f := s.pol.CosignedFile; f != "" && f != "-" {
		b, err := os.ReadFile(f)
		switch {
		case err == nil:
			extra = append(extra, b)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("witness: cosigned checkpoint file: %w", err)
		}
	}
	best, ok, problems, err := Newest(ctx, s.st, extra, s.logKey, s.Verifiers(), 1)
	for _, pr := range problems {
		s.log.Warn("witness: "+pr, "check", "start-up")
	}
	if err != nil {
		return fmt.Errorf("%w (cosigned file %s)", err, s.pol.CosignedFile)
	}
	if ok {
		if err := CheckTree(ctx, tr, best); err != nil {
			return err
		}
		s.fileMu.Lock()
		s.file = best
		s.fileMu.Unlock()
	}
	// What the store itself says each witness cosigned last.
	for _, p := range s.peers {
		if s.st == nil {
			break
		}
		rows, err := s.st.Cosignatures(ctx, p.c.Key.Name(), 0, 1)
		if err != nil {
			return fmt.Errorf("witness: read cosignatures: %w", err)
		}
		if len(rows) == 1 {
			p.known, p.cosigned = rows[0].Size, rows[0].Size
		}
	}
	// Each witness's own view.
	cp, err := s.src.Latest(ctx)
	if err != nil {
		return fmt.Errorf("witness: read the newest checkpoint: %w", err)
	}
	if cp.Note == nil {
		return nil
	}
	size, err := tr.Size(ctx)
	if err != nil {
		return fmt.Errorf("witness: check store: %w", err)
	}
	results := make([]Result, len(s.peers))
	var wg sync.WaitGroup
	for i, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.mu.Lock()
			defer p.mu.Unlock()
			p.cosigned = -1 // ask even if the store says it was cosigned: that is the point
			co, err := s.submit(ctx, p, cp)
			results[i] = s.record(ctx, p, cp, co, err)
		}()
	}
	wg.Wait()
	var divs []string
	var who []string
	var first *Divergence
	for i, r := range results {
		p := s.peers[i]
		var ahead *AheadError
		var d *Divergence
		switch {
		case errors.As(r.Err, &ahead) && ahead.WitnessSize > size:
			d = &Divergence{Size: ahead.WitnessSize, Msg: fmt.Sprintf(
				"witness %s has cosigned a tree of size %d for this log, but the store has only %d entries: the store was truncated or rolled back", p.name, ahead.WitnessSize, size)}
		case errors.As(r.Err, &ahead):
			d = &Divergence{Size: ahead.WitnessSize, Msg: fmt.Sprintf(
				"witness %s has cosigned a tree of size %d for this log, but the store's newest checkpoint has size %d: checkpoints were removed or the store was rolled back", p.name, ahead.WitnessSize, cp.Size)}
		case errors.Is(r.Err, ErrInconsistent):
			d = &Divergence{Size: p.known, Msg: fmt.Sprintf(
				"witness %s refused the store's checkpoint of size %d as inconsistent with the tree of size %d it cosigned: the log was rewritten after it was witnessed", p.name, cp.Size, p.known)}
		}
		if d != nil {
			d.Witnesses = []string{p.name}
			divs, who = append(divs, d.Msg), append(who, p.name)
			if first == nil {
				first = d
			}
		}
	}
	if first != nil {
		return &Divergence{Size: first.Size, Witnesses: who, Msg: strings.Join(divs, "; ")}
	}
	return nil
}

// writeFileAtomic replaces path with data durably (temp file, fsync,
// rename, fsync of the directory).
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(dir, ".cosigned-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

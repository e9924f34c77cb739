package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Get returns the catalogue entry of recording id.
func (r *Recorder) Get(ctx context.Context, id string) (Entry, error) {
	if err := validID(id); err != nil {
		return Entry{}, fmt.Errorf("recording: %w", err)
	}
	return r.cat.Get(ctx, id)
}

// Find returns the recordings of a request id (usually one; a client that
// reuses request ids can have several), oldest first. The catalogue has
// no request-id index, so Find reads every entry: callers that hold the
// audit log find a request's recordings through its entries instead
// (recordingcheck.Find, which uses FindNear).
func (r *Recorder) Find(ctx context.Context, requestID string) ([]Entry, error) {
	return r.FindNear(ctx, requestID, time.Time{}, 0)
}

// FindNear is Find limited to recordings reserved within window of at
// (the time of the request's admission entry: Reserve comes just before
// it), which the catalogue's id order bounds. A zero at searches all.
func (r *Recorder) FindNear(ctx context.Context, requestID string, at time.Time, window time.Duration) ([]Entry, error) {
	if requestID == "" {
		return nil, errors.New("recording: Find without a request id")
	}
	f := Filter{RequestID: requestID}
	if !at.IsZero() {
		f.AfterID, f.BeforeID = IDPrefix(at.Add(-window)), IDPrefix(at.Add(window+time.Millisecond))
	}
	var out []Entry
	for {
		es, err := r.cat.List(ctx, f)
		if err != nil {
			return out, err
		}
		out = append(out, es...)
		if len(es) < listPage {
			return out, nil
		}
		f.AfterID = es[len(es)-1].ID
	}
}

// listPage is the catalogue's default page (Filter.Limit 0).
const listPage = 1000

// Opened is a recording being read: its catalogue entry and a Reader over
// its canonical form, decrypted and authenticated chunk by chunk. Close it.
type Opened struct {
	Entry Entry
	*Reader
	body io.Closer
	dec  *zstd.Decoder
}

// Close releases the object and the decompressor.
func (o *Opened) Close() error {
	o.dec.Close()
	return o.body.Close()
}

// Open opens recording id for reading. An erased recording is an error
// wrapping ErrErased; a stored object that does not authenticate is a
// *CorruptError (here or while reading).
func (r *Recorder) Open(ctx context.Context, id string) (*Opened, error) {
	e, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.open(ctx, e)
}

func (r *Recorder) open(ctx context.Context, e Entry) (*Opened, error) {
	if e.Erasure != nil || e.WrappedKey == nil {
		return nil, fmt.Errorf("recording %s: %w", e.ID, ErrErased)
	}
	kek, ok := r.keys.Get(e.KEKID)
	if !ok {
		return nil, fmt.Errorf("recording %s: wrapped by key %s, which is not configured (recordings.previous_key_files)", e.ID, e.KEKID)
	}
	dk, err := kek.Unwrap(e.WrappedKey, e.ID)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	body, err := r.blobs.Get(ctx, e.Object)
	if errors.Is(err, ErrNotFound) {
		return nil, &CorruptError{ID: e.ID, Reason: "stored object " + e.Object + " is missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", e.ID, err)
	}
	or, err := newOpenReader(body, dk, e.ID)
	if err != nil {
		body.Close()
		return nil, err
	}
	dec, err := newDecoder(or)
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("recording %s: decompressor: %w", e.ID, err)
	}
	rd, err := NewReader(dec)
	if err != nil {
		dec.Close()
		body.Close()
		return nil, r.readErr(e.ID, err)
	}
	m := rd.Meta()
	if m.ID != e.ID || m.RequestID != e.RequestID {
		dec.Close()
		body.Close()
		return nil, &CorruptError{ID: e.ID, Reason: "recording header names another recording or request"}
	}
	return &Opened{Entry: e, Reader: rd, body: body, dec: dec}, nil
}

// readErr turns failures under authenticated decryption into corruption
// reports: the canonical form can only be malformed if its object was
// produced by someone else or damaged before sealing.
func (r *Recorder) readErr(id string, err error) error {
	var ce *CorruptError
	var fe *FormatError
	if errors.As(err, &ce) {
		return ce
	}
	if errors.As(err, &fe) {
		return &CorruptError{ID: id, Reason: fe.Msg}
	}
	return fmt.Errorf("recording %s: read: %w", id, err)
}

// Load reads recording id into memory (bodies up to max bytes) and checks
// its digest against the catalogue.
func (r *Recorder) Load(ctx context.Context, id string, max int64) (*Recording, Entry, error) {
	o, err := r.Open(ctx, id)
	if err != nil {
		return nil, Entry{}, err
	}
	defer o.Close()
	rec := &Recording{Meta: *o.Meta()}
	if rec.RequestBody, err = o.RequestBody(max); err != nil {
		return nil, o.Entry, r.readErr(id, err)
	}
	if rec.Marks, err = o.Marks(); err != nil {
		return nil, o.Entry, r.readErr(id, err)
	}
	if rec.Meta.Response.Body == BodyFull && rec.Meta.Response.BodySize > max {
		return nil, o.Entry, fmt.Errorf("recording %s: response body of %d bytes exceeds %d", id, rec.Meta.Response.BodySize, max)
	}
	body, err := o.ResponseBody()
	if err != nil {
		return nil, o.Entry, r.readErr(id, err)
	}
	if rec.ResponseBody, err = io.ReadAll(body); err != nil {
		return nil, o.Entry, r.readErr(id, err)
	}
	d, err := o.Reader.Close()
	if err != nil {
		return nil, o.Entry, r.readErr(id, err)
	}
	if d != o.Entry.Digest {
		return nil, o.Entry, &CorruptError{ID: id, Reason: "digest " + d.String() + " does not match the catalogue's " + o.Entry.Digest.String()}
	}
	return rec, o.Entry, nil
}

// Verify reads recording id in full (as a stream), authenticating every
// chunk and recomputing the digest, and compares it with the catalogue's
// and, when expected is not zero, with expected (the digest the audit log
// committed to). A mismatch or damage is a *CorruptError. An erased
// recording returns its entry and an error wrapping ErrErased — its
// catalogue digest is still compared with expected.
func (r *Recorder) Verify(ctx context.Context, id string, expected Digest) (Entry, error) {
	e, err := r.Get(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	if !expected.IsZero() && e.Digest != expected {
		return e, &CorruptError{ID: id, Reason: "catalogue digest " + e.Digest.String() + " differs from the expected " + expected.String()}
	}
	o, err := r.open(ctx, e)
	if err != nil {
		return e, err
	}
	defer o.Close()
	if _, err := o.RequestBody(r.maxSize); err != nil {
		return e, r.readErr(id, err)
	}
	if _, err := o.Marks(); err != nil {
		return e, r.readErr(id, err)
	}
	body, err := o.ResponseBody()
	if err != nil {
		return e, r.readErr(id, err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return e, r.readErr(id, err)
	}
	d, err := o.Reader.Close()
	if err != nil {
		return e, r.readErr(id, err)
	}
	if d != e.Digest {
		return e, &CorruptError{ID: id, Reason: "content digest " + d.String() + " differs from the catalogue's " + e.Digest.String()}
	}
	return e, nil
}

// VerifyAll verifies every recording in the catalogue, calling fn with
// each entry and its Verify error (nil, ErrErased, a *CorruptError, or an
// outage). An error from fn stops the walk.
func (r *Recorder) VerifyAll(ctx context.Context, fn func(Entry, error) error) error {
	after := ""
	for {
		es, err := r.cat.List(ctx, Filter{AfterID: after, Limit: 500})
		if err != nil {
			return fmt.Errorf("recording: verify: %w", err)
		}
		for _, e := range es {
			_, verr := r.Verify(ctx, e.ID, Digest{})
			if err := fn(e, verr); err != nil {
				return err
			}
		}
		if len(es) < 500 {
			return nil
		}
		after = es[len(es)-1].ID
	}
}

// newDecoder is the decompressor of every stored object, whatever
// encoder settings wrote it (with or without the entropy stage or the
// frame checksum: decision 032).
func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(8<<20))
}

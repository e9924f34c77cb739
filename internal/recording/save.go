package recording

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Saving a recording has two steps. A builder goroutine builds the
// object (CPU: canonical form, zstd, AES-GCM; GOMAXPROCS builders) and
// queues it for the committer, which makes whole batches durable
// together and answers the Finish waiting for it: the objects (a BatchPutter such as FSStore
// syncs a batch with one journal commit; other stores get parallel Puts)
// and then the catalogue entries in one transaction. One sync for many
// recordings, instead of three per recording, is what keeps recording
// everything affordable (docs/decisions/009-recording-storage.md).

// commitQueue bounds the recordings built and waiting to be committed.
const commitQueue = 1024

// maxBatch bounds one commit.
const maxBatch = 256

type commitReq struct {
	ctx   context.Context
	obj   Object
	entry Entry
	done  chan error // buffered: the answer never blocks
}

// answer tells the waiting save how the commit went.
func (req *commitReq) answer(err error) {
	if err != nil {
		err = fmt.Errorf("recording %s: %w", req.entry.ID, err)
	}
	req.done <- err
}

// errClosedRecorder: Finish after Close.
var errClosedRecorder = errors.New("recording: recorder closed")

// save has a builder build c's object and queue it for the committer,
// and waits until the committer made it durable. The builder queues the
// object itself and the committer answers the waiting Finish directly:
// one hand-off between goroutines each way, not two.
func (r *Recorder) save(ctx context.Context, c *Capture) (Digest, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.saveTo)
	defer cancel()
	if r.closing.Load() {
		return Digest{}, 0, errClosedRecorder
	}
	obj := &spillBuffer{dir: r.spill, threshold: 1 << 20, budget: r.budget}
	defer obj.Close()
	j := &buildJob{ctx: ctx, c: c, obj: obj, done: make(chan error, 1)}
	select {
	case r.builds <- j:
	case <-ctx.Done():
		return Digest{}, 0, fmt.Errorf("recording %s: waiting to build: %w", c.id, ctx.Err())
	case <-r.stop:
		return Digest{}, 0, errClosedRecorder
	}
	// Every job a builder took is answered exactly once: by the builder
	// when building or queueing fails, else by the committer, which runs
	// until every builder has stopped and then commits what is queued.
	// Until then the builder or the committer may read c and obj.
	if err := <-j.done; err != nil {
		return Digest{}, 0, err
	}
	return j.d, j.size, nil
}

type buildJob struct {
	ctx context.Context
	c   *Capture
	obj *spillBuffer
	// d and size are set by the builder before it queues the object
	// (read by save after done).
	d    Digest
	size int64
	done chan error
}

// builder builds the objects handed to it, and queues them for the
// committer, until Close.
func (r *Recorder) builder() {
	defer r.wg.Done()
	defer func() {
		if r.buildersLeft.Add(-1) == 0 {
			close(r.buildersDone)
		}
	}()
	for {
		select {
		case j := <-r.builds:
			r.buildAndQueue(j)
		case <-r.stop:
			return
		}
	}
}

// buildAndQueue builds j's object and queues it for the committer, or
// answers j with the failure.
func (r *Recorder) buildAndQueue(j *buildJob) {
	c := j.c
	m, d, dk, err := r.buildObject(j.ctx, c, j.obj)
	if err != nil {
		j.done <- err
		return
	}
	defer clear(dk)
	body, err := j.obj.Body()
	if err != nil {
		j.done <- fmt.Errorf("recording %s: %w", c.id, err)
		return
	}
	kek := r.keys.Current()
	wrapped, err := kek.Wrap(dk, c.id)
	if err != nil {
		j.done <- err
		return
	}
	j.d, j.size = d, body.Size
	req := &commitReq{
		ctx: j.ctx,
		obj: Object{Name: objectName(c.id, m.StartedAt), Body: body.R, Size: body.Size},
		entry: Entry{
			ID: c.id, RequestID: m.RequestID, Principal: m.Principal, Route: m.Route, Level: m.Level,
			StartedAt: m.StartedAt, Size: body.Size, Digest: d, KEKID: kek.ID(),
			WrappedKey: wrapped, CreatedAt: r.now().UTC(),
		},
		done: j.done,
	}
	// No case for stop: the committer runs until the builders have
	// stopped, so this send completes (or the save times out).
	select {
	case r.queue <- req:
		if len(r.queue) >= maxBatch-1 {
			// A full batch is waiting: no need to linger.
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
	case <-j.ctx.Done():
		j.done <- fmt.Errorf("recording %s: waiting to commit: %w", c.id, j.ctx.Err())
	}
}

// buildObject writes c's object into obj: canonical form → zstd → sealed
// chunks under a fresh data key, which it returns with the digest.
func (r *Recorder) buildObject(ctx context.Context, c *Capture, obj io.Writer) (*Meta, Digest, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, Digest{}, nil, fmt.Errorf("recording %s: waiting to build: %w", c.id, err)
	}
	m, reqBody := r.meta(c)
	timing, err := c.marks.Body()
	if err != nil {
		return nil, Digest{}, nil, fmt.Errorf("recording %s: %w", c.id, err)
	}
	resp := Body{R: eofReader{}}
	if m.Response.Body == BodyFull {
		if resp, err = c.body.Body(); err != nil {
			return nil, Digest{}, nil, fmt.Errorf("recording %s: %w", c.id, err)
		}
	}
	dk := make([]byte, KeySize)
	rand.Read(dk)
	sw, err := newSealWriter(obj, dk, c.id)
	if err != nil {
		return nil, Digest{}, nil, err
	}
	defer sw.release()
	var d Digest
	if int64(len(reqBody))+timing.Size+resp.Size <= smallObject {
		d, err = r.encodeSmall(sw, m, reqBody, timing, resp)
	} else {
		d, err = r.encodeStream(sw, m, reqBody, timing, resp)
	}
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		clear(dk)
		return nil, Digest{}, nil, fmt.Errorf("recording %s: build object: %w", c.id, err)
	}
	return m, d, dk, nil
}

// committer makes queued recordings durable in batches until Close
// has stopped every builder; then it commits what is still queued and
// stops. A batch gathers what
// arrives within commitLinger of its first recording (up to maxBatch):
// at moderate rates (a few hundred streams a second) a commit would
// otherwise carry one or two recordings, and its fixed cost — a
// transaction and two fsyncs, which also queue behind the audit log's
// own fsync on the same disk — would be paid per recording.
func (r *Recorder) committer() {
	defer r.wg.Done()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var first *commitReq
		select {
		case first = <-r.queue:
		case <-r.buildersDone:
			// Close: every builder has stopped, so nothing more is
			// queued; commit what is.
			for {
				select {
				case req := <-r.queue:
					r.commit([]*commitReq{req})
				default:
					return
				}
			}
		}
		batch := []*commitReq{first}
		// The committer sleeps through the linger instead of waking for
		// every recording that arrives (one scheduler hand-off per
		// recording less), unless a full batch is already waiting.
		select {
		case <-r.full:
		default:
		}
		if len(r.queue) < maxBatch-1 {
			linger.Reset(r.linger)
			select {
			case <-linger.C:
			case <-r.full:
			case <-r.buildersDone:
			}
			linger.Stop()
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-r.queue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		r.commit(batch)
	}
}

// commitLinger is how long a batch waits for more recordings after its
// first. It delays the terminal audit entry (never the client) by as much.
// A commit's fixed cost (a transaction, two fsyncs: ~1 ms of CPU on the
// 2-core bench machine) is shared by what arrives meanwhile: at the
// harness's ~2000 recordings/s, 25 ms cut the recorder's CPU per
// recording by ~13% against 10 ms (decision 028). Since the committer
// sleeps through the linger instead of waking for every arrival, 50 ms
// takes another ~15% off at the stream workload's ~280 recordings/s
// (BenchmarkRequestPaced) and a few % at 2000/s; 100 ms gained nothing
// more (decision 032). Fewer commits also mean fewer fsyncs queueing
// with the audit log's on the same disk.
const commitLinger = 50 * time.Millisecond

// commit stores the batch's objects, then their catalogue entries in one
// transaction, and answers every request.
func (r *Recorder) commit(batch []*commitReq) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.answer(fmt.Errorf("waiting to commit: %w", err))
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.saveTo)
	defer cancel()
	objs := make([]Object, len(live))
	for i, req := range live {
		objs[i] = req.obj
	}
	res := r.putObjects(ctx, objs)
	entries := make([]Entry, 0, len(live))
	stored := make([]*commitReq, 0, len(live))
	for i, req := range live {
		if res[i].Err != nil {
			req.answer(fmt.Errorf("store object: %w", res[i].Err))
			continue
		}
		req.entry.Object = res[i].Locator
		entries = append(entries, req.entry)
		stored = append(stored, req)
	}
	if len(stored) == 0 {
		return
	}
	if err := r.cat.PutBatch(ctx, entries); err != nil {
		for _, req := range stored {
			// Without its key the object is noise; remove it.
			if derr := r.blobs.Delete(ctx, req.entry.Object); derr != nil {
				r.log.Warn("recording: removing an object without a catalogue entry failed", "object", req.entry.Object, "err", derr)
			}
			req.answer(fmt.Errorf("catalogue: %w", err))
		}
		return
	}
	for _, req := range stored {
		req.answer(nil)
	}
}

// putObjects stores objs: in one batch when the store supports it,
// otherwise with parallel Puts.
func (r *Recorder) putObjects(ctx context.Context, objs []Object) []PutResult {
	if bp, ok := r.blobs.(BatchPutter); ok {
		return bp.PutBatch(ctx, objs)
	}
	res := make([]PutResult, len(objs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, o := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res[i].Locator, res[i].Err = r.blobs.Put(ctx, o.Name, o.Body, o.Size)
		}()
	}
	wg.Wait()
	return res
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// smallObject bounds the bodies of a recording whose canonical form is
// built in memory, then hashed and compressed in one call each
// (encodeSmall); larger ones (spilled captures) stream (encodeStream).
// At four times the default spill threshold, every capture held in
// memory is built in memory; a build holds at most ~2 MiB (canonical and
// compressed forms), and there are GOMAXPROCS builders.
const smallObject = 1 << 20

// plainBufs recycles encodeSmall's buffers (canonical form, compressed
// form); buffers grown past maxPooledBuf are left to the GC.
var plainBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledBuf = 256 << 10

func getPlainBuf() *[]byte { return plainBufs.Get().(*[]byte) }

// putPlainBuf returns b to the pool, wiping what it holds (b's length
// covers every byte written to it: pooled buffers are clean beyond it).
func putPlainBuf(b *[]byte, wipe bool) {
	if wipe {
		clear(*b)
	}
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		plainBufs.Put(b)
	}
}

// encodeSmall writes the zstd-compressed canonical form to w: built in a
// pooled buffer, hashed with one SHA-256 call, compressed with the
// recorder's shared encoder's EncodeAll (no per-object writer, Reset or
// Close; safe for concurrent use). The plaintext is wiped from the buffer
// before it is reused.
func (r *Recorder) encodeSmall(w io.Writer, m *Meta, reqBody []byte, timing, resp Body) (Digest, error) {
	// The meta JSON goes into a pooled buffer too (wiped: it holds the
	// recorded headers) instead of a fresh one per recording.
	metaBuf := getPlainBuf()
	defer putPlainBuf(metaBuf, true)
	meta, err := appendMetaChecked((*metaBuf)[:0], m)
	*metaBuf = meta
	if err != nil {
		return Digest{}, err
	}
	plain := getPlainBuf()
	defer putPlainBuf(plain, true)
	// Sized up front (section headers take < 100 bytes): a buffer grown
	// midway would leave a copy of the plaintext to the GC unwiped.
	size := len(magic) + 100 + len(meta) + len(reqBody) + int(timing.Size) + int(resp.Size)
	*plain, err = appendCanonical(slices.Grow((*plain)[:0], size), meta, BytesBody(reqBody), timing, resp)
	if err != nil {
		return Digest{}, err
	}
	d := Digest(sha256.Sum256(*plain))
	comp := getPlainBuf()
	// The compressed form is the plaintext in another encoding: wipe it
	// too.
	defer putPlainBuf(comp, true)
	*comp = smallEncoder().EncodeAll(*plain, (*comp)[:0])
	if _, err := w.Write(*comp); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// encodeStream writes the zstd-compressed canonical form to w as a
// stream, for recordings too large to build in memory.
func (r *Recorder) encodeStream(w io.Writer, m *Meta, reqBody []byte, timing, resp Body) (Digest, error) {
	enc, err := r.encoder(w)
	if err != nil {
		return Digest{}, err
	}
	d, err := Encode(enc, m, BytesBody(reqBody), timing, resp)
	if err == nil {
		err = enc.Close()
	}
	enc.Reset(nil)
	r.encs.Put(enc)
	return d, err
}

// zstdOptions are the encoders' settings: the fastest level and a 512 KiB
// window (recording is on every request's completion path, and memory per
// concurrent save stays small), and no frame checksum — every chunk of a
// stored object carries an AES-GCM tag, and the digest covers the
// plaintext, so an xxhash of the frame would only catch what those
// already catch.
var zstdOptions = []zstd.EOption{
	zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(512 << 10),
	zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false),
}

// smallEncoder is the encoder of encodeSmall, shared by every recorder of
// the process: EncodeAll keeps one block encoder per concurrent call, up
// to its concurrency (as many as there are builders).
//
// It skips zstd's entropy stage (huff0 literals; sequences still use
// FSE): for a recording of a few KB the stage's fixed cost per call —
// counting symbols and building tables — was more than half of EncodeAll,
// ~8.3 → ~3.8 µs of CPU on the bench's chat call, for objects ~35–42%
// larger (1.3 → 1.8 KB; BenchmarkZstdOptions, decision 032). Recordings
// above smallObject keep the entropy stage (encodeStream): there its cost
// is spread over the size, and the size is what matters.
var smallEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, append(zstdOptions, zstd.WithNoEntropyCompression(true), zstd.WithEncoderConcurrency(max(2, runtime.GOMAXPROCS(0))))...)
	if err != nil {
		panic(fmt.Sprintf("recording: compressor: %v", err)) // constant options
	}
	return e
})

func (r *Recorder) encoder(w io.Writer) (*zstd.Encoder, error) {
	if e, ok := r.encs.Get().(*zstd.Encoder); ok {
		e.Reset(w)
		return e, nil
	}
	e, err := zstd.NewWriter(w, append(zstdOptions, zstd.WithEncoderConcurrency(1))...)
	if err != nil {
		return nil, fmt.Errorf("recording: compressor: %w", err)
	}
	return e, nil
}

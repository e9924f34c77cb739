package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// deadLetter is a sink's dead-letter file: JSON lines, one per event the
// receiver refused for good, with the reason. Written and fsynced before
// the cursor moves past the event, so a refused event is never lost.
type deadLetter struct {
	mu   sync.Mutex
	path string
	f    *os.File
	// ev, when set, also records each refusal in the audit log.
	ev Evidence
}

type deadLetterLine struct {
	Time   time.Time       `json:"time"`
	Sink   string          `json:"sink"`
	UID    string          `json:"uid"`
	Seq    int64           `json:"seq"`
	Kind   string          `json:"kind"`
	Reason string          `json:"reason"`
	Event  json.RawMessage `json:"event"`
}

// write appends the refused events and fsyncs.
func (d *deadLetter) write(sink string, now time.Time, evs []Event, reasons []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
			return fmt.Errorf("export: dead-letter file: %w", err)
		}
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("export: dead-letter file: %w", err)
		}
		d.f = f
	}
	var buf []byte
	for i, ev := range evs {
		line, err := json.Marshal(deadLetterLine{Time: now.UTC(), Sink: sink, UID: ev.UID, Seq: ev.Seq, Kind: ev.Kind, Reason: reasons[i], Event: ev.JSON})
		if err != nil {
			return fmt.Errorf("export: dead-letter %s: %w", ev.UID, err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if _, err := d.f.Write(buf); err != nil {
		return fmt.Errorf("export: write dead-letter file %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("export: sync dead-letter file %s: %w", d.path, err)
	}
	// After the file: the event is kept even when the log cannot take
	// the entry (logged by the caller, not fatal).
	if err := d.recordDeadLetters(sink, evs, reasons); err != nil {
		return &evidenceError{err}
	}
	return nil
}

// evidenceError is a dead-letter entry the audit log did not take: the
// dead-letter file has the event, so delivery goes on.
type evidenceError struct{ err error }

func (e *evidenceError) Error() string {
	return "export: record dead letter in the audit log: " + e.err.Error()
}
func (e *evidenceError) Unwrap() error { return e.err }

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

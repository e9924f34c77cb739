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
	return nil
}

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

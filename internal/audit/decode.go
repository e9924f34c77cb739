package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DecodeEntry decodes entry bytes already authenticated by the tree (a
// verified segment, a checked inclusion proof) without ParseEntry's
// canonical-form check, which re-encodes the entry and costs a third of
// the parse. Unknown fields, trailing data and unknown schema versions are
// still errors. Use ParseEntry for bytes from anywhere else.
func DecodeEntry(seq int64, data []byte) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("audit: entry %d: %d bytes, limit %d", seq, len(data), MaxEntrySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var e Entry
	w := entryJSON{entryFields: (*entryFields)(&e)}
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("audit: entry %d: %w", seq, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("audit: entry %d: trailing data", seq)
	}
	if e.V != SchemaVersion {
		return nil, fmt.Errorf("audit: entry %d: unknown schema version %d", seq, e.V)
	}
	e.Principal = w.Principal.principal()
	e.Seq = seq
	return &e, nil
}

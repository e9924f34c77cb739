package export

import (
	"bytes"
	"encoding/json"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// FuzzMapEntry: whatever an entry holds (any kind, any strings, numbers
// and details), its mapping is valid OCSF 1.8 and carries its uid, and
// the mapper never panics.
func FuzzMapEntry(f *testing.F) {
	for _, k := range append(catalogue, "x.y", "") {
		for _, e := range sampleEntries(k) {
			if b, err := audit.Marshal(e); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{"kind":"request.completed","method":"PROPFIND","status":99999999999,"details":{"client_ip":"not-an-ip","user_agent":"\u0000\ud800"},"principal":{"iss":"","sub":""}}`))
	f.Add([]byte(`{"kind":"request.refused","details":{"reason":"invalid_token","client_ip":"::1"},"path":"/v1/<script>"}`))
	f.Add([]byte(`{"kind":"config.changed","details":{"applied":"yes","what":7}}`))
	s := loadSchema(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, _, ok := fuzzedEntry(b)
		if !ok {
			return
		}
		m := Mapper{Origin: "o", ProductVersion: "v"}
		for _, drop := range []bool{false, true} {
			m.DropParams = drop
			ev, err := m.Entry(e, nil, nil)
			if err != nil {
				t.Fatalf("map: %v", err)
			}
			if !bytes.Contains(ev.JSON, []byte(`"uid":"o/7"`)) {
				t.Fatalf("no uid: %s", ev.JSON)
			}
			if s != nil {
				if err := s.Validate(ev.JSON); err != nil {
					t.Fatalf("invalid OCSF for %s:\n%v\n%s", b, err, ev.JSON)
				}
			}
		}
	})
}

// fuzzedEntry reads fuzz input as an entry (the recorded principal is
// decoded into Entry.Principal too) at seq 7, with its canonical bytes;
// ok is false when it is not an entry the log could hold.
func fuzzedEntry(b []byte) (e *audit.Entry, data []byte, ok bool) {
	var in struct {
		audit.Entry
		Principal *identity.Principal `json:"principal"`
	}
	if json.Unmarshal(b, &in) != nil || in.Kind == "" {
		return nil, nil, false
	}
	e = &in.Entry
	e.Principal = in.Principal
	e.V, e.Seq = audit.SchemaVersion, 7
	data, err := audit.Marshal(e)
	if err != nil {
		return nil, nil, false
	}
	return e, data, true
}

// FuzzVerifyStream: arbitrary input never panics the verifier, and a
// mangled export is never reported valid with more proven entries than
// the original.
func FuzzVerifyStream(f *testing.F) {
	l := newMemLog(f)
	l.fill(f, 12, 5)
	m := Mapper{Origin: "warden-audit", ProductVersion: "v"}
	var stream bytes.Buffer
	fr := frontier{}
	for i, it := range l.items {
		var snap = fr.snapshot()
		if i%4 != 0 {
			snap = nil
		}
		var ev Event
		var err error
		if it.Checkpoint != nil {
			ev, err = m.Checkpoint(*it.Checkpoint, snap)
		} else {
			ev, err = m.Entry(it.Entry, it.Data, snap)
			fr.add(leafOf(it.Data))
		}
		if err != nil {
			f.Fatal(err)
		}
		stream.Write(ev.JSON)
		stream.WriteByte('\n')
	}
	_, v := testKeys(f)
	rep, err := VerifyStream(bytes.NewReader(stream.Bytes()), v)
	if err != nil || rep.Bound != 12 {
		f.Fatalf("seed stream: %+v %v", rep, err)
	}
	f.Add(stream.Bytes())
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyStream(bytes.NewReader(b), v)
		if err == nil && rep.Bound > 12 {
			t.Fatalf("proved %d entries of a 12-entry log", rep.Bound)
		}
	})
}

func leafOf(data []byte) tlog.Hash { return tlog.RecordHash(data) }

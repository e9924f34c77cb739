package export

import (
	"bytes"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

func BenchmarkVerifyStream(b *testing.B) {
	l := newMemLog(b)
	l.fill(b, 1000, 100)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	var buf bytes.Buffer
	fr := frontier{}
	for i, it := range l.items {
		var ev Event
		var err error
		var snap = fr.snapshot()
		if i > 0 {
			snap = nil
		}
		if it.Checkpoint != nil {
			ev, err = m.Checkpoint(*it.Checkpoint, snap)
		} else {
			ev, err = m.Entry(it.Entry, it.Data, snap)
		}
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(ev.JSON)
		buf.WriteByte('\n')
	}
	_, v := testKeys(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyStream(bytes.NewReader(buf.Bytes()), v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkMapEntry(b *testing.B) {
	e := sampleEntries("request.completed")[0]
	e.Seq = 12345
	data, _ := auditMarshalForBench(e)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	var size int
	for b.Loop() {
		ev, err := m.Entry(e, data, nil)
		if err != nil {
			b.Fatal(err)
		}
		size = len(ev.JSON)
	}
	b.ReportMetric(float64(size), "bytes/event")
}

func auditMarshalForBench(e *audit.Entry) ([]byte, error) { return audit.Marshal(e) }

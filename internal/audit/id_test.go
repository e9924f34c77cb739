package audit

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestNewEntryID: ids are UUIDv7 strings as uuid.NewV7 writes them,
// carry the clock's millisecond, and sort in the order they were made,
// also when the clock stands still or steps back.
func TestNewEntryID(t *testing.T) {
	clock := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	defer func(f func() time.Time) { v7Now = f }(v7Now)
	v7Now = func() time.Time { return clock }
	prev := ""
	for i := range 10000 {
		if i == 5000 {
			clock = clock.Add(-time.Second) // a clock that steps back
		}
		id, err := newEntryID()
		if err != nil {
			t.Fatal(err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if u.String() != id || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: string %q, version %d, variant %v", id, u.String(), u.Version(), u.Variant())
		}
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
	// Real clock: the time in the id is the clock's.
	v7Now = time.Now
	before := time.Now().UnixMilli()
	id, _ := newEntryID()
	u, _ := uuid.Parse(id)
	sec, nsec := u.Time().UnixTime()
	if ms := sec*1000 + nsec/1e6; ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("id %s has time %d ms, want about %d", id, ms, before)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = newEntryID() }); n > 1 && !raceEnabled {
		t.Errorf("%v allocations per id, want 1", n)
	}
}

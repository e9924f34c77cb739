package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// The mapping's output is pinned byte for byte by goldens that the
// mapper of main 203b3d1 (before decision 031) wrote: every catalogue
// kind's sample entries in full (testdata/mapping-golden.jsonl), and the
// SHA-256 of the events of goldenRandom randomized entries
// (testdata/mapping-random.sha256). A change to the mapping or the
// encoder that moves one byte of one event fails TestMappingGolden;
// regenerating them (-update-golden) is a change of the export format
// and needs MappingVersion's review.

var updateGolden = flag.Bool("update-golden", false, "rewrite the mapping goldens in testdata")

const goldenRandom = 2000

// goldenCase is one mapped event of the goldens.
type goldenCase struct {
	name string
	ev   Event
}

// goldenCases maps every golden input with the store path (entry decoded
// from its canonical bytes): with and without parameters, with and
// without a frontier.
func goldenCases(t testing.TB, entries []*audit.Entry, prefix string) []goldenCase {
	t.Helper()
	var out []goldenCase
	for i, e := range entries {
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatalf("%s %d: marshal: %v", prefix, i, err)
		}
		d, err := audit.DecodeEntry(e.Seq, data)
		if err != nil {
			t.Fatalf("%s %d: decode: %v", prefix, i, err)
		}
		for _, drop := range []bool{false, true} {
			m := Mapper{Origin: "warden-audit", ProductVersion: "1.2.3", DropParams: drop}
			var fr []tlog.Hash
			if i%3 == 0 {
				fr = goldenFrontier(i)
			}
			ev, err := m.Entry(d, data, fr)
			if err != nil {
				t.Fatalf("%s %d: map: %v", prefix, i, err)
			}
			out = append(out, goldenCase{fmt.Sprintf("%s/%d/%s/drop=%v", prefix, i, e.Kind, drop), ev})
		}
	}
	return out
}

func goldenFrontier(i int) []tlog.Hash {
	fr := make([]tlog.Hash, 1+i%4)
	for j := range fr {
		fr[j] = sha256.Sum256([]byte(fmt.Sprint(i, j)))
	}
	return fr
}

// catalogueEntries is every sample entry of every catalogue kind (and
// an unknown kind) with distinct sequence numbers.
func catalogueEntries() []*audit.Entry {
	var out []*audit.Entry
	for _, k := range append(catalogue, "x.unknown") {
		for _, e := range sampleEntries(k) {
			e.Seq = int64(len(out)) * 7
			out = append(out, e)
		}
	}
	return out
}

// randomEntries returns n entries with random content, as the gateway
// appends them (Go types in params and details, principals with fields
// entries do not record, times in other zones, occasional invalid
// UTF-8), deterministic for a seed.
func randomEntries(seed uint64, n int) []*audit.Entry {
	r := rand.New(rand.NewPCG(seed, 17))
	kinds := append(append([]string(nil), catalogue...), "x.unknown", "request.completed", "request.completed", "request.admitted")
	out := make([]*audit.Entry, n)
	for i := range out {
		out[i] = randomEntry(r, kinds[r.IntN(len(kinds))], int64(i)*3+r.Int64N(3))
	}
	return out
}

var goldenStrings = []string{
	"", "alice", "Alice Liddell", "<script>&amp;</script>", "ünïcödé ✓", "line\u2028sep\u2029", "tab\tnew\nline\r",
	`quote"back\slash`, "ctl\x00\x01\x1f\x7f", "😀 emoji", "bad\xffutf8", "\xc3(", "/v1/chat/completions",
	"openai", "llama-3", "ok", "upstream_error", "masking_failed", "invalid_token", "unauthenticated", "policy",
	"10.0.0.7", "::1", "not-an-ip", "grant", "pending", "https://idp.example sub-1", "POST", "GET", "PROPFIND",
}

func randomString(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return goldenStrings[r.IntN(len(goldenStrings))] + goldenStrings[r.IntN(len(goldenStrings))]
	}
	return goldenStrings[r.IntN(len(goldenStrings))]
}

// detailKeys are the details the mapping reads, and a few it does not.
var detailKeys = []string{
	"user_agent", "client_ip", "reason", "description", "setting", "approval_kind", "state", "justification",
	"requester", "scope", "actor", "what", "file", "new_version", "old_version", "applied", "error", "version",
	"unverified_start", "divergence", "recording_digest", "sink", "uid", "kind", "witness", "result", "size",
	"grant", "other", "nested",
}

func randomValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(16); {
	case n < 5:
		return randomString(r)
	case n == 5:
		return r.IntN(2) == 0
	case n == 6:
		return nil
	case n == 7:
		return r.IntN(100000) - 500
	case n == 8:
		return r.Int64()
	case n == 9:
		return []float64{0.2, 1e21, 1.5e-7, 3, -0.0, 123456789.125}[r.IntN(6)]
	case n == 10:
		return json.Number([]string{"0.2", "17", "-3e5", "1E+2"}[r.IntN(4)])
	case n == 11:
		return []string{randomString(r), randomString(r)}[:r.IntN(3)]
	case n == 12:
		return map[string]string{randomString(r): randomString(r)}
	case n == 13 && depth < 3:
		a := make([]any, r.IntN(3))
		for i := range a {
			a[i] = randomValue(r, depth+1)
		}
		return a
	case n == 14 && depth < 3:
		return randomMap(r, depth+1, nil)
	case n == 15:
		return []uint32{1, 2}
	}
	return "x"
}

func randomMap(r *rand.Rand, depth int, keys []string) map[string]any {
	m := map[string]any{}
	for range r.IntN(5) {
		k := randomString(r)
		if keys != nil && r.IntN(3) > 0 {
			k = keys[r.IntN(len(keys))]
		}
		m[k] = randomValue(r, depth)
	}
	return m
}

func randomEntry(r *rand.Rand, kind string, seq int64) *audit.Entry {
	zones := []*time.Location{time.UTC, time.FixedZone("X", 5*3600+1800), time.Local}
	e := &audit.Entry{V: 1, Seq: seq, Kind: kind,
		Time: time.Unix(1700000000+r.Int64N(1e8), r.Int64N(1e9)).In(zones[r.IntN(len(zones))]),
		ID:   fmt.Sprintf("0193a1b2-%04x-7000-8000-%012x", r.IntN(1<<16), r.Int64N(1<<40))}
	pick := func(p int) bool { return r.IntN(p) == 0 }
	if pick(2) {
		e.RequestID = "req-" + randomString(r)
	}
	if pick(2) {
		e.Instance = randomString(r)
	}
	if pick(2) {
		e.Principal = &identity.Principal{Issuer: randomString(r), Subject: randomString(r), Kind: identity.Kind([]string{"user", "service", "", "robot"}[r.IntN(4)]),
			Name: randomString(r), Email: "a@b.example", AuthMethod: []string{"oidc", "api_key", "", "mtls"}[r.IntN(4)],
			CredentialID: randomString(r), Claims: map[string]any{"x": 1}, ExpiresAt: time.Now()}
		for range r.IntN(3) {
			e.Principal.Groups = append(e.Principal.Groups, randomString(r))
		}
		if pick(4) {
			e.Principal.Groups = []string{}
		}
	}
	e.Route, e.Method, e.Path, e.Model = randomString(r), randomString(r), randomString(r), randomString(r)
	if pick(2) {
		e.Method = []string{"POST", "GET", "PUT", "DELETE", "PATCH", "HEAD"}[r.IntN(6)]
	}
	if pick(2) {
		e.RequestSHA256 = strings.Repeat("ab", 32)
	}
	if pick(2) {
		e.Params = randomMap(r, 0, []string{"temperature", "stream", "max_tokens", "messages"})
	}
	if pick(2) {
		e.Decision = &audit.Decision{Action: randomString(r), Rule: randomString(r), PolicyVersion: randomString(r), Reason: randomString(r)}
	}
	if pick(3) {
		e.ApprovalID = randomString(r)
	}
	if pick(4) {
		e.GrantID = randomString(r)
	}
	e.Status = []int{0, 200, 201, 401, 403, 429, 502, 99, 1000, 99999999}[r.IntN(10)]
	e.BytesIn, e.BytesOut = r.Int64N(5000)-10, r.Int64N(100000)
	e.Upstream, e.Gateway = time.Duration(r.Int64N(5e9)), time.Duration(r.Int64N(5e7))
	for range r.IntN(4) {
		e.Masking = append(e.Masking, audit.MaskAction{Rule: randomString(r), Entity: randomString(r), Location: randomString(r),
			Count: r.IntN(9), Fingerprint: randomString(r)})
	}
	if pick(2) {
		e.ResponseSHA256 = strings.Repeat("cd", 32)
	}
	e.Outcome = []string{"", "ok", "upstream_error", "masking_failed", "client_gone", randomString(r)}[r.IntN(6)]
	if pick(4) {
		e.Details = map[string]any{}
	} else if !pick(5) {
		e.Details = randomMap(r, 0, detailKeys)
		if pick(3) {
			e.Details["applied"] = pick(2)
		}
		if pick(4) {
			e.Details["unverified_start"] = true
		}
	}
	return e
}

func TestMappingGolden(t *testing.T) {
	cat := goldenCases(t, catalogueEntries(), "catalogue")
	rnd := goldenCases(t, randomEntries(1, goldenRandom), "random")
	fullPath := filepath.Join("testdata", "mapping-golden.jsonl")
	sumPath := filepath.Join("testdata", "mapping-random.sha256")
	if *updateGolden {
		var full, sums bytes.Buffer
		for _, c := range cat {
			full.Write(c.ev.JSON)
			full.WriteByte('\n')
		}
		for _, c := range rnd {
			h := sha256.Sum256(c.ev.JSON)
			fmt.Fprintf(&sums, "%s %s\n", hex.EncodeToString(h[:]), c.name)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fullPath, full.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sumPath, sums.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d + %d golden events", len(cat), len(rnd))
		return
	}
	full, err := os.ReadFile(fullPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(full, []byte("\n")), []byte("\n"))
	if len(lines) != len(cat) {
		t.Fatalf("%d golden events, %d catalogue cases", len(lines), len(cat))
	}
	for i, c := range cat {
		if !bytes.Equal(c.ev.JSON, lines[i]) {
			t.Errorf("%s differs from the golden:\n got %s\nwant %s", c.name, c.ev.JSON, lines[i])
		}
	}
	f, err := os.Open(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		sum, name, _ := strings.Cut(sc.Text(), " ")
		if i >= len(rnd) {
			break
		}
		h := sha256.Sum256(rnd[i].ev.JSON)
		if rnd[i].name != name || hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s (golden %s) differs from the golden: %s", rnd[i].name, name, rnd[i].ev.JSON)
		}
	}
	if i != len(rnd) {
		t.Fatalf("%d golden sums, %d random cases", i, len(rnd))
	}
}

// entryFedMatches checks that entryFed maps e (as appended) to the bytes
// Entry maps its decoded form to, with and without parameters; it
// reports whether e took the direct path.
func entryFedMatches(t testing.TB, e *audit.Entry) bool {
	t.Helper()
	data, err := audit.Marshal(e)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	d, err := audit.DecodeEntry(e.Seq, data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	for _, drop := range []bool{false, true} {
		m := Mapper{Origin: "warden-audit", ProductVersion: "1.2.3", DropParams: drop}
		got, err := m.entryFed(e, data)
		if err != nil {
			t.Fatalf("entryFed: %v", err)
		}
		want, err := m.Entry(d, data, nil)
		if err != nil {
			t.Fatalf("map decoded: %v", err)
		}
		if !bytes.Equal(got.JSON, want.JSON) || got.UID != want.UID || got.Seq != want.Seq || got.Kind != want.Kind ||
			!got.Time.Equal(want.Time) || got.Severity != want.Severity || got.leaf != want.leaf {
			t.Fatalf("entry %d (%s, drop_params %v) maps differently as appended:\n got %s\nwant %s", e.Seq, e.Kind, drop, got.JSON, want.JSON)
		}
	}
	return e.Recordable()
}

// TestEntryFedMatchesDecoded: an entry mapped as the log appended it
// (the commit feed's entries) gives the same event as the entry decoded
// from its bytes (a store read), for every catalogue sample and for
// randomized entries with Go numbers, string lists and maps, other
// time zones, unrecorded principal fields and invalid UTF-8; both the
// direct path and the decoding fallback are exercised.
func TestEntryFedMatchesDecoded(t *testing.T) {
	direct, fallback := 0, 0
	count := func(ok bool) {
		if ok {
			direct++
		} else {
			fallback++
		}
	}
	for _, e := range catalogueEntries() {
		count(entryFedMatches(t, e))
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for _, e := range randomEntries(2, n) {
		count(entryFedMatches(t, e))
	}
	t.Logf("%d entries mapped directly, %d decoded first", direct, fallback)
	if direct < n/10 || fallback < n/10 {
		t.Fatalf("the randomized entries took the direct path %d times and the fallback %d times: both must be exercised", direct, fallback)
	}
}

// FuzzEntryFed: for any randomized entry, mapping it as appended equals
// mapping it decoded.
func FuzzEntryFed(f *testing.F) {
	for s := range uint64(8) {
		f.Add(s, uint8(s))
	}
	kinds := append(append([]string(nil), catalogue...), "x.unknown")
	f.Fuzz(func(t *testing.T, seed uint64, k uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(k)))
		entryFedMatches(t, randomEntry(r, kinds[int(k)%len(kinds)], int64(seed>>1)))
	})
}

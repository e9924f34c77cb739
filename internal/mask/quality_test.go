package mask

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateQuality = flag.Bool("update-quality", false, "rewrite the detector-quality section of docs/masking.md")

const (
	qualityItems      = 400 // items per format and per negative class
	qualitySplitItems = 8   // items per format masked as a stream split at every byte offset
	qualitySSEItems   = 2   // items per format streamed as two chat deltas split at every rune offset
	qualityCommand    = "go test ./internal/mask -run TestDetectorQuality -update-quality"

	targetRecall = 0.995 // every listed format, whole text and streamed
	targetFPRate = 0.005 // of negative items; 0 on checksum-invalid and never-issued values
)

type formatRow struct {
	entity, format        string
	items, found, partial int
	splits, splitFound    int
	splitDiffer           int // streamed output differs from whole-text output
}

type classRow struct {
	class          string
	invalid        bool
	items, flagged int
}

// qualityEdits masks an item the way the gateway would (MaskJSON for a JSON
// document, MaskText otherwise) and returns the edits in the coordinates
// of it.text (or it.str for JSON), plus the number of other changes.
func qualityEdits(t *testing.T, m *Masker, it *corpusItem) (edits []edit, other int) {
	if it.jsonKey == "" {
		edits, _ = m.scan(it.text, true, nil, scanOpts{})
		if got, want := m.MaskText(it.text, "", nil), applyString(it.text, edits); got != want {
			t.Fatalf("MaskText differs from its edits for %q", it.text)
		}
		return edits, 0
	}
	var pre lookback
	pre.set(it.jsonKey)
	pre.push(": ")
	edits, _ = m.scan(it.str, true, nil, scanOpts{pre: &pre})
	out, err := m.MaskJSON([]byte(it.text), nil)
	if err != nil {
		t.Fatalf("MaskJSON(%s): %v", it.text, err)
	}
	var in, got map[string]any
	if json.Unmarshal([]byte(it.text), &in) != nil || json.Unmarshal(out, &got) != nil {
		t.Fatalf("corpus JSON %s -> %s", it.text, out)
	}
	if got[it.jsonKey] != applyString(it.str, edits) {
		t.Fatalf("MaskJSON(%s) = %s: the value is not masked as its string alone would be", it.text, out)
	}
	for k, v := range in {
		if k != it.jsonKey && fmt.Sprint(got[k]) != fmt.Sprint(v) {
			other++
		}
	}
	return edits, other
}

// TestDetectorQuality measures recall per entity type and written format,
// precision per entity type, and the false-positive rate per class of
// look-alike identifiers, on the labelled corpus (corpus_test.go), through
// the whole-text path and the streaming path, and fails below the targets.
// The tables in docs/masking.md are its output: with -update-quality it
// rewrites them, without it fails when they are stale.
func TestDetectorQuality(t *testing.T) {
	m := defaultMasker(t)
	g := newCorpusGen()
	pos := g.positives(qualityItems)
	neg := g.negatives(qualityItems)

	var rows []*formatRow
	byFormat := map[string]*formatRow{}
	type variantRow struct{ items, found int }
	var variants []string
	byVariant := map[string]*variantRow{}
	tp, fp := map[string]int{}, map[string]int{}
	var misses []string
	sampled := map[string]int{}
	for i := range pos {
		it := &pos[i]
		key := it.entity + "\x00" + it.format
		r := byFormat[key]
		if r == nil {
			r = &formatRow{entity: it.entity, format: it.format}
			byFormat[key] = r
			rows = append(rows, r)
		}
		r.items++
		edits, other := qualityEdits(t, m, it)
		fp["(other JSON members)"] += other
		found, partial := false, false
		for _, e := range edits {
			switch {
			case e.end <= it.vs || e.start >= it.ve:
				fp[e.r.entity]++
			case e.start <= it.vs && e.end >= it.ve && e.r.entity == it.entity:
				found = true
				tp[e.r.entity]++
			case e.start <= it.vs && e.end >= it.ve:
				fp[e.r.entity]++ // the value masked as another entity
			default:
				partial = true
			}
		}
		if found {
			r.found++
		} else {
			if partial {
				r.partial++
			}
			if len(misses) < 40 {
				misses = append(misses, fmt.Sprintf("%s / %s (%s): %q", it.entity, it.format, it.context, it.text))
			}
		}
		if it.variant != "" && it.entity == "CREDIT_CARD" {
			v := byVariant[it.variant]
			if v == nil {
				v = &variantRow{}
				byVariant[it.variant] = v
				variants = append(variants, it.variant)
			}
			v.items++
			if found {
				v.found++
			}
		}
		// The streaming path, for a sample: split at every byte offset
		// (and, for fewer items, as chat deltas split at every rune
		// offset), the output must equal the whole-text output.
		if it.jsonKey != "" || sampled[key] >= qualitySplitItems {
			continue
		}
		sampled[key]++
		whole := m.MaskText(it.text, "", nil)
		for k := 1; k < len(it.text); k++ {
			ts := m.NewTextStream("", nil)
			out := ts.Write(nil, it.text[:k])
			out = ts.Write(out, it.text[k:])
			out = ts.Flush(out)
			r.splits++
			if string(out) != whole {
				r.splitDiffer++
			} else if found {
				r.splitFound++
			}
		}
		if sampled[key] <= qualitySSEItems {
			for k := range it.text {
				if k == 0 {
					continue
				}
				stream := chatStream(map[int][]string{0: {it.text[:k], it.text[k:]}}, []int{0, 0}, false)
				got := collectChat(t, parseSSE(t, maskSSE(t, m, StreamOpenAI, bytes.NewReader(stream), nil)), nil)[0]
				r.splits++
				if got != whole {
					r.splitDiffer++
				} else if found {
					r.splitFound++
				}
			}
		}
	}

	var classes []*classRow
	byClass := map[string]*classRow{}
	var fpSamples []string
	negStream := map[string]int{}
	for i := range neg {
		it := &neg[i]
		c := byClass[it.format]
		if c == nil {
			c = &classRow{class: it.format, invalid: it.invalid}
			byClass[it.format] = c
			classes = append(classes, c)
		}
		c.items++
		edits, other := qualityEdits(t, m, it)
		for _, e := range edits {
			fp[e.r.entity]++
		}
		fp["(other JSON members)"] += other
		if len(edits) > 0 || other > 0 {
			c.flagged++
			if len(fpSamples) < 40 {
				fpSamples = append(fpSamples, fmt.Sprintf("%s (%s): %q -> %q", it.format, it.context, it.text, m.MaskText(it.text, "", nil)))
			}
		}
		if it.jsonKey == "" && negStream[it.format] < qualitySplitItems {
			negStream[it.format]++
			whole := m.MaskText(it.text, "", nil)
			for k := 1; k < len(it.text); k++ {
				ts := m.NewTextStream("", nil)
				out := ts.Flush(ts.Write(ts.Write(nil, it.text[:k]), it.text[k:]))
				if string(out) != whole {
					t.Errorf("negative %q split at %d streams %q, whole text %q", it.text, k, out, whole)
				}
			}
		}
	}

	doc := renderQuality(rows, variants, func(v string) (int, int) { return byVariant[v].items, byVariant[v].found }, tp, fp, classes)
	t.Log("\n" + doc)

	// Targets.
	for _, r := range rows {
		if rec := float64(r.found) / float64(r.items); rec < targetRecall {
			t.Errorf("%s / %s: recall %.2f%% < %.1f%%", r.entity, r.format, 100*rec, 100*targetRecall)
		}
		if r.splitDiffer > 0 {
			t.Errorf("%s / %s: %d of %d streamed splits differ from the whole-text output", r.entity, r.format, r.splitDiffer, r.splits)
		}
		if r.splits > 0 {
			if rec := float64(r.splitFound) / float64(r.splits); rec < targetRecall {
				t.Errorf("%s / %s: streamed recall %.2f%% < %.1f%%", r.entity, r.format, 100*rec, 100*targetRecall)
			}
		}
	}
	total, flagged := 0, 0
	for _, c := range classes {
		total += c.items
		flagged += c.flagged
		if c.invalid && c.flagged > 0 {
			t.Errorf("%s: %d of %d masked; checksum-invalid and never-issued values must never be", c.class, c.flagged, c.items)
		}
	}
	if rate := float64(flagged) / float64(total); rate > targetFPRate {
		t.Errorf("false-positive rate %.2f%% of negative items > %.1f%%", 100*rate, 100*targetFPRate)
	}
	for _, s := range misses {
		t.Log("missed: " + s)
	}
	for _, s := range fpSamples {
		t.Log("false positive: " + s)
	}
	if t.Failed() {
		return
	}

	// The table in docs/masking.md is this output.
	path := filepath.Join("..", "..", "docs", "masking.md")
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- detector-quality:begin -->\n", "<!-- detector-quality:end -->"
	i, j := bytes.Index(md, []byte(begin)), bytes.Index(md, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q section", path, strings.TrimSpace(begin), end)
	}
	updated := string(md[:i+len(begin)]) + doc + string(md[j:])
	if updated == string(md) {
		return
	}
	if !*updateQuality {
		t.Fatalf("the detector-quality tables in docs/masking.md are stale; regenerate them with `%s`", qualityCommand)
	}
	if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pct(n, d int) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(d))
}

// renderQuality writes the markdown tables of docs/masking.md.
func renderQuality(rows []*formatRow, variants []string, variant func(string) (int, int), tp, fp map[string]int, classes []*classRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `%s` (corpus seed %d, %d items per format and per negative class, spread over prose, markdown tables, JSON strings, YAML, URLs and code blocks; default profile).\n\n",
		qualityCommand, corpusSeed, qualityItems)
	b.WriteString("Recall by entity type and written format. *Partly masked*: items where a match covered only part of the value. *Streamed*: ")
	fmt.Fprintf(&b, "%d items per format (prose, markdown, YAML, URL and code contexts) masked as a stream split at every byte offset, and %d of them as two chat deltas split at every rune offset; *streamed recall* counts splits whose output equals the whole-text output and masks the value.\n\n", qualitySplitItems, qualitySSEItems)
	b.WriteString("| Entity | Format | Items | Recall | Partly masked | Streamed splits | Streamed recall |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %d | %s |\n", r.entity, r.format, r.items, pct(r.found, r.items), r.partial, r.splits, pct(r.splitFound, r.splits))
	}
	b.WriteString("\nCards by network and length (all formats):\n\n| Network and length | Items | Recall |\n|---|---:|---:|\n")
	for _, v := range variants {
		n, f := variant(v)
		fmt.Fprintf(&b, "| %s | %d | %s |\n", v, n, pct(f, n))
	}
	b.WriteString("\nPrecision by entity type (false positives: matches outside the labelled value, in positive and negative items):\n\n| Entity | True positives | False positives | Precision |\n|---|---:|---:|---:|\n")
	var ents []string
	for e := range tp {
		ents = append(ents, e)
	}
	for e := range fp {
		if _, ok := tp[e]; !ok && fp[e] > 0 {
			ents = append(ents, e)
		}
	}
	slices.Sort(ents)
	for _, e := range ents {
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", e, tp[e], fp[e], pct(tp[e], tp[e]+fp[e]))
	}
	b.WriteString("\nNegative corpus: items with anything masked. Classes marked † must never be masked (checksum-invalid or never-issued values).\n\n| Class | Items | Masked | False-positive rate |\n|---|---:|---:|---:|\n")
	total, flagged := 0, 0
	for _, c := range classes {
		name := c.class
		if c.invalid {
			name += " †"
		}
		total += c.items
		flagged += c.flagged
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", name, c.items, c.flagged, pct(c.flagged, c.items))
	}
	fmt.Fprintf(&b, "| **all negative items** | %d | %d | %s |\n", total, flagged, pct(flagged, total))
	return b.String()
}

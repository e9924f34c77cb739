package recording_test

import (
	"bytes"
	stdjson "encoding/json"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/har"
	"github.com/go-json-experiment/json"

	"github.com/wardenhq/warden/internal/recording"
)

// harRequired lists, per HAR 1.2 object, the members the spec does not
// mark optional (http://www.softwareishard.com/blog/har-12-spec/). The
// library types below check names and types; this checks presence.
var harRequired = map[string][]string{
	"log":      {"version", "creator", "entries"},
	"creator":  {"name", "version"},
	"entry":    {"startedDateTime", "time", "request", "response", "cache", "timings"},
	"request":  {"method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"},
	"response": {"status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL", "headersSize", "bodySize"},
	"content":  {"size", "mimeType"},
	"postData": {"mimeType", "params", "text"},
	"timings":  {"send", "wait", "receive"},
	"nv":       {"name", "value"},
}

// harContentMembers are all members a HAR 1.2 content object may have
// (the library decodes content with a custom method that does not reject
// unknown members, so they are checked here).
var harContentMembers = map[string]bool{"size": true, "compression": true, "mimeType": true, "text": true, "encoding": true, "comment": true}

func requireMembers(t *testing.T, where, kind string, obj map[string]any) {
	t.Helper()
	for _, k := range harRequired[kind] {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: required member %q missing", where, k)
		}
	}
}

// stripCustom removes the members that start with "_" (HAR 1.2's custom
// fields), returning them by path.
func stripCustom(v any, path string, found map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if strings.HasPrefix(k, "_") {
				found[path+"."+k] = val
				delete(x, k)
				continue
			}
			x[k] = stripCustom(val, path+"."+k, found)
		}
	case []any:
		for i := range x {
			x[i] = stripCustom(x[i], path+"[]", found)
		}
	}
	return v
}

func TestHARStrict(t *testing.T) {
	sse := timedRecording(10*time.Millisecond, 25*time.Millisecond, 60*time.Millisecond)
	js := timedRecording(30 * time.Millisecond)
	js.Meta.ID, js.Meta.RequestID = "0193a4f5c2e1a9f8e7d6c5b4a39211111", "req-json"
	js.Meta.Response.SSE, js.Meta.Response.Events = false, 0
	js.Meta.Response.Header = []recording.Field{{Name: "Content-Type", Value: "application/json"}, {Name: "Location", Value: "/v1/x"}}
	js.ResponseBody = bytes.Repeat([]byte("x"), len(js.ResponseBody))
	meta := timedRecording(5*time.Millisecond, 9*time.Millisecond)
	meta.Meta.ID, meta.Meta.Level = "0193a4f5c2e1a9f8e7d6c5b4a39212222", recording.LevelMetadata
	meta.Meta.Request.Body, meta.Meta.Response.Body = recording.BodyOmitted, recording.BodyOmitted
	meta.RequestBody, meta.ResponseBody = nil, nil
	bin := timedRecording(7 * time.Millisecond)
	bin.Meta.ID = "0193a4f5c2e1a9f8e7d6c5b4a39213333"
	bin.Meta.Response.SSE, bin.Meta.Response.Events = false, 0
	bin.ResponseBody = bytes.Repeat([]byte{0xff, 0x00}, len(bin.ResponseBody)/2)
	bin.ResponseBody = append(bin.ResponseBody, make([]byte, int(bin.Meta.Response.BodySize)-len(bin.ResponseBody))...)

	d := recording.Digest{1, 2, 3}
	var out bytes.Buffer
	if err := recording.WriteHAR(&out, "test", recording.HAREntry{Recording: sse, Digest: d},
		recording.HAREntry{Recording: js}, recording.HAREntry{Recording: meta}, recording.HAREntry{Recording: bin}); err != nil {
		t.Fatal(err)
	}

	// 1. Custom members are only where HAR allows them (prefixed "_").
	var generic any
	if err := stdjson.Unmarshal(out.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	custom := map[string]any{}
	var toStrip any
	stdjson.Unmarshal(out.Bytes(), &toStrip)
	stripped, _ := stdjson.Marshal(stripCustom(toStrip, "", custom))
	var paths []string
	for p := range custom {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if strings.Join(paths, " ") != ".log.entries[]._sseEvents .log.entries[]._warden" {
		t.Errorf("custom members at %v", paths)
	}

	// 2. Everything else decodes strictly into the HAR 1.2 types of
	// github.com/chromedp/cdproto/har: no unknown member, every type right.
	var doc har.HAR
	if err := json.Unmarshal(stripped, &doc, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("strict decode into cdproto/har: %v\n%s", err, out.String())
	}

	// 3. Required members present, content members known.
	g := generic.(map[string]any)["log"].(map[string]any)
	requireMembers(t, "log", "log", g)
	requireMembers(t, "log.creator", "creator", g["creator"].(map[string]any))
	for i, e := range g["entries"].([]any) {
		em := e.(map[string]any)
		requireMembers(t, "entry", "entry", em)
		rq, rs := em["request"].(map[string]any), em["response"].(map[string]any)
		requireMembers(t, "request", "request", rq)
		requireMembers(t, "response", "response", rs)
		requireMembers(t, "timings", "timings", em["timings"].(map[string]any))
		c := rs["content"].(map[string]any)
		requireMembers(t, "content", "content", c)
		for k := range c {
			if !harContentMembers[k] {
				t.Errorf("entry %d: content member %q is not in HAR 1.2", i, k)
			}
		}
		if pd, ok := rq["postData"].(map[string]any); ok {
			requireMembers(t, "postData", "postData", pd)
		}
		for _, h := range append(rq["headers"].([]any), rs["headers"].([]any)...) {
			requireMembers(t, "header", "nv", h.(map[string]any))
		}
	}

	// 4. The content: one entry per recording, timings that add up, SSE
	// events with their offsets, bodies as recorded.
	if doc.Log.Version != "1.2" || len(doc.Log.Entries) != 4 {
		t.Fatalf("version %q, %d entries", doc.Log.Version, len(doc.Log.Entries))
	}
	for i, e := range doc.Log.Entries {
		tm := e.Timings
		if sum := tm.Send + tm.Wait + tm.Receive; math.Abs(sum-e.Time) > 0.001 {
			t.Errorf("entry %d: time %v is not the sum of its timings %v", i, e.Time, sum)
		}
		if ts, err := time.Parse(time.RFC3339Nano, e.StartedDateTime); err != nil || !ts.Equal(sse.Meta.StartedAt) {
			t.Errorf("entry %d: startedDateTime %q: %v", i, e.StartedDateTime, err)
		}
	}
	e0 := doc.Log.Entries[0]
	if e0.Request.Method != "POST" || e0.Request.URL != "http://127.0.0.1:8080/v1/chat/completions?trace=1" ||
		len(e0.Request.QueryString) != 1 || e0.Request.QueryString[0].Name != "trace" {
		t.Errorf("request %+v", e0.Request)
	}
	if e0.Request.PostData == nil || !strings.Contains(e0.Request.PostData.Text, "[REDACTED:CREDIT_CARD]") {
		t.Errorf("postData %+v", e0.Request.PostData)
	}
	if string(e0.Response.Content.Text) != string(sse.ResponseBody) || e0.Response.Content.MimeType != "text/event-stream" {
		t.Errorf("content %q", e0.Response.Content.Text)
	}
	if e0.Timings.Wait != 5 || e0.Timings.Receive != 60 {
		t.Errorf("timings wait %v receive %v, want 5 and 60", e0.Timings.Wait, e0.Timings.Receive)
	}
	var ext []struct {
		Time float64 `json:"time"`
		Size int64   `json:"size"`
		Data string  `json:"data"`
	}
	evs := generic.(map[string]any)["log"].(map[string]any)["entries"].([]any)[0].(map[string]any)["_sseEvents"]
	b, _ := stdjson.Marshal(evs)
	if err := json.Unmarshal(b, &ext, json.RejectUnknownMembers(true)); err != nil {
		t.Fatal(err)
	}
	if len(ext) != 3 || ext[0].Time != 10 || ext[1].Time != 25 || ext[2].Time != 60 || !strings.HasPrefix(ext[1].Data, "data: ") {
		t.Errorf("_sseEvents %+v", ext)
	}
	w := generic.(map[string]any)["log"].(map[string]any)["entries"].([]any)[0].(map[string]any)["_warden"].(map[string]any)
	if w["digest"] != d.String() || w["recordingId"] != sse.Meta.ID || w["requestId"] != "req-play" {
		t.Errorf("_warden %v", w)
	}
	if e1 := doc.Log.Entries[1]; e1.Response.RedirectURL != "/v1/x" {
		t.Errorf("redirectURL %q", e1.Response.RedirectURL)
	}
	if e2 := doc.Log.Entries[2]; e2.Request.PostData != nil || len(e2.Response.Content.Text) != 0 || e2.Response.Content.Size != meta.Meta.Response.BodySize {
		t.Errorf("metadata entry: postData %+v, content %q", e2.Request.PostData, e2.Response.Content.Text)
	}
	if e3 := doc.Log.Entries[3]; e3.Response.Content.Encoding != "base64" || !bytes.Equal(e3.Response.Content.Text, bin.ResponseBody) {
		t.Errorf("binary entry: encoding %q, %d bytes", e3.Response.Content.Encoding, len(e3.Response.Content.Text))
	}
}

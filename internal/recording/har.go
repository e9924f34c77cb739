package recording

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), written with
// the types below: only the spec's fields, plus custom fields that start
// with an underscore as the spec allows — "_sseEvents" (every SSE event
// with its offset from the request start, the timings HAR itself has no
// field for) and "_warden" (which recording, which request, which
// digest).

type harDoc struct {
	Log harLog `json:"log"`
}

type harLog struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Entries []harEntry `json:"entries"`
	Comment string     `json:"comment,omitempty"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harEntry struct {
	StartedDateTime string         `json:"startedDateTime"`
	Time            float64        `json:"time"`
	Request         harRequest     `json:"request"`
	Response        harResponse    `json:"response"`
	Cache           struct{}       `json:"cache"`
	Timings         harTimings     `json:"timings"`
	Comment         string         `json:"comment,omitempty"`
	SSEEvents       []harSSEEvent  `json:"_sseEvents,omitempty"`
	Warden          harWardenExtra `json:"_warden"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int64        `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
	Comment     string       `json:"comment,omitempty"`
}

type harPostData struct {
	MimeType string  `json:"mimeType"`
	Params   []harNV `json:"params"`
	Text     string  `json:"text"`
	Comment  string  `json:"comment,omitempty"`
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int64      `json:"headersSize"`
	BodySize    int64      `json:"bodySize"`
	Comment     string     `json:"comment,omitempty"`
}

type harContent struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// harTimings: blocked, dns, connect and ssl are -1 (they concern the
// client's connection, which the gateway does not see from here); send is
// 0, wait is the time to the response headers and receive the rest.
type harTimings struct {
	Blocked float64 `json:"blocked"`
	DNS     float64 `json:"dns"`
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
	SSL     float64 `json:"ssl"`
}

type harSSEEvent struct {
	// Time is the offset from startedDateTime in milliseconds.
	Time float64 `json:"time"`
	Size int64   `json:"size"`
	Data string  `json:"data,omitempty"`
	// Partial marks a tail that no blank line ended.
	Partial bool `json:"partial,omitempty"`
}

type harWardenExtra struct {
	RecordingID string `json:"recordingId"`
	RequestID   string `json:"requestId"`
	Digest      string `json:"digest,omitempty"`
	Principal   string `json:"principal,omitempty"`
	Route       string `json:"route,omitempty"`
	Level       Level  `json:"level"`
}

// HAREntry pairs a recording with its digest for WriteHAR (the digest may
// be zero when unknown).
type HAREntry struct {
	Recording *Recording
	Digest    Digest
}

// WriteHAR writes one HAR 1.2 document with one entry per recording,
// sorted as given (callers pass them oldest first). version names the
// creating Warden version.
func WriteHAR(w io.Writer, version string, recs ...HAREntry) error {
	doc := harDoc{Log: harLog{Version: "1.2", Creator: harCreator{Name: "warden", Version: version}, Entries: []harEntry{}}}
	for _, r := range recs {
		doc.Log.Entries = append(doc.Log.Entries, harEntryOf(r.Recording, r.Digest))
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func msf(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

func harHeaders(fs []Field) []harNV {
	out := make([]harNV, 0, len(fs))
	for _, f := range fs {
		out = append(out, harNV{Name: f.Name, Value: f.Value})
	}
	return out
}

func headerValue(fs []Field, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func harEntryOf(rec *Recording, d Digest) harEntry {
	m := &rec.Meta
	scheme, host := m.Request.Scheme, m.Request.Host
	if scheme == "" {
		scheme = "http"
	}
	if host == "" {
		host = "warden.invalid"
	}
	u := scheme + "://" + host + m.Request.Path
	if m.Request.Query != "" {
		u += "?" + m.Request.Query
	}
	e := harEntry{
		StartedDateTime: m.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Time:            msf(m.DurationNS),
		Request: harRequest{
			Method: m.Request.Method, URL: u, HTTPVersion: "HTTP/1.1",
			Cookies: []harNV{}, Headers: harHeaders(m.Request.Header), QueryString: harQuery(m.Request.Query),
			HeadersSize: -1, BodySize: m.Request.BodySize,
		},
		Response: harResponse{
			Status: m.Response.Status, StatusText: http.StatusText(m.Response.Status), HTTPVersion: "HTTP/1.1",
			Cookies: []harNV{}, Headers: harHeaders(m.Response.Header),
			RedirectURL: headerValue(m.Response.Header, "Location"), HeadersSize: -1, BodySize: m.Response.BodySize,
		},
		Timings: harTimings{
			Blocked: -1, DNS: -1, Connect: -1, SSL: -1, Send: 0,
			Wait: msf(m.Response.HeaderAtNS), Receive: msf(max(m.DurationNS-m.Response.HeaderAtNS, 0)),
		},
		Warden: harWardenExtra{RecordingID: m.ID, RequestID: m.RequestID, Principal: m.Principal, Route: m.Route, Level: m.Level},
	}
	// time must be the sum of the timings that apply.
	e.Time = e.Timings.Send + e.Timings.Wait + e.Timings.Receive
	if !d.IsZero() {
		e.Warden.Digest = d.String()
	}
	switch m.Request.Body {
	case BodyRedacted, BodyRaw:
		pd := &harPostData{MimeType: headerValue(m.Request.Header, "Content-Type"), Params: []harNV{}}
		if utf8.Valid(rec.RequestBody) {
			pd.Text = string(rec.RequestBody)
		} else {
			pd.Text = base64.StdEncoding.EncodeToString(rec.RequestBody)
			pd.Comment = "base64"
		}
		if m.Request.Body == BodyRedacted {
			pd.Comment = strings.TrimSpace(pd.Comment + " redacted by warden")
		}
		e.Request.PostData = pd
	case BodyOmitted:
		e.Request.Comment = "request body not recorded"
	}
	c := harContent{Size: m.Response.BodySize, MimeType: headerValue(m.Response.Header, "Content-Type")}
	switch m.Response.Body {
	case BodyFull:
		if utf8.Valid(rec.ResponseBody) {
			c.Text = string(rec.ResponseBody)
		} else {
			c.Text, c.Encoding = base64.StdEncoding.EncodeToString(rec.ResponseBody), "base64"
		}
	case BodyOmitted:
		c.Comment = "response body not recorded (record: metadata)"
	}
	e.Response.Content = c
	if m.Response.SSE {
		e.SSEEvents = []harSSEEvent{}
		for _, ev := range rec.Events() {
			se := harSSEEvent{Time: msf(int64(ev.At)), Size: ev.Size, Partial: ev.Partial}
			if ev.Data != nil {
				se.Data = string(ev.Data)
			}
			e.SSEEvents = append(e.SSEEvents, se)
		}
	}
	return e
}

func harQuery(raw string) []harNV {
	out := []harNV{}
	if raw == "" {
		return out
	}
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out = append(out, harNV{Name: k, Value: v})
	}
	return out
}

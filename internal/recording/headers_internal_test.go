package recording

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

// TestFilterHeader: credentials, hop-by-hop headers, those Connection
// names and the stripped ones are dropped; the rest come sorted by
// canonical name with values in order, also when non-canonical keys
// canonicalise out of their sorted order.
func TestFilterHeader(t *testing.T) {
	cases := []struct {
		name  string
		h     http.Header
		strip []string
		want  []Field
	}{
		{"nil", nil, nil, []Field{}},
		{"credentials and hop-by-hop", http.Header{
			"Authorization": {"Bearer x"}, "Cookie": {"a=b"}, "X-Api-Key": {"k"}, "Connection": {"close"},
			"Transfer-Encoding": {"chunked"}, "Accept": {"*/*"},
		}, nil, []Field{{"Accept", "*/*"}}},
		{"named by Connection", http.Header{
			"Connection": {"X-Hop, keep-alive", " x-other "}, "X-Hop": {"1"}, "X-Other": {"2"}, "X-Keep": {"3"},
		}, nil, []Field{{"X-Keep", "3"}}},
		{"stripped", http.Header{"X-Tenant-Assertion": {"t"}, "Y": {"1"}}, []string{"X-Tenant-Assertion"}, []Field{{"Y", "1"}}},
		{"values in order", http.Header{"B": {"2", "1"}, "A": {"z", "y"}}, nil,
			[]Field{{"A", "z"}, {"A", "y"}, {"B", "2"}, {"B", "1"}}},
		{"non-canonical keys", http.Header{"b-x": {"1"}, "A-X": {"2"}, "a-y": {"3"}, "B-W": {"4"}}, nil,
			[]Field{{"A-X", "2"}, {"A-Y", "3"}, {"B-W", "4"}, {"B-X", "1"}}},
		{"non-canonical credential", http.Header{"authorization": {"Bearer x"}, "set-cookie": {"s"}}, nil, []Field{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := filterHeader(tc.h, canonicalNames(tc.strip))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCaptureHeadersAreSnapshots: changing a header after Request or
// WriteHeader (the proxy reuses its maps) does not change the recording.
func TestCaptureHeadersAreSnapshots(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1700000000, 0), step: time.Millisecond}
	r := &Recorder{now: clk.now, maxSize: 1 << 20}
	c := &Capture{r: r, id: testID, info: Info{RequestID: "r", Start: clk.t, Level: LevelMetadata}}
	reqH := http.Header{"Accept": {"a"}}
	respH := http.Header{"Content-Type": {"application/json"}}
	c.Request(ForwardedRequest{Method: "GET", Path: "/", Header: reqH})
	c.WriteHeader(200, respH)
	reqH.Set("Accept", "changed")
	reqH.Set("X-New", "1")
	respH.Set("Content-Type", "changed")
	m, _ := r.meta(c)
	if want := []Field{{"Accept", "a"}}; !reflect.DeepEqual(m.Request.Header, want) {
		t.Errorf("request header %v, want %v", m.Request.Header, want)
	}
	if want := []Field{{"Content-Type", "application/json"}}; !reflect.DeepEqual(m.Response.Header, want) {
		t.Errorf("response header %v, want %v", m.Response.Header, want)
	}
}

package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
)

// Client calls the admin API (the warden approvals CLI uses it). The
// token is sent as a bearer token and never appears in errors.
type Client struct {
	// BaseURL is the admin listener, e.g. http://127.0.0.1:9090.
	BaseURL string
	// Token is the caller's bearer token (OIDC access token or API key).
	Token string
	// HTTP is the client to use (nil: http.DefaultClient).
	HTTP *http.Client
}

// APIError is an error answer of the admin API, in the one error shape.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Type, Message and RequestID are the body's error fields.
	Type, Message, RequestID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Type, e.Message)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Do sends one request (body as JSON when not nil) and decodes a
// successful JSON answer into out. An error answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	b, _, err := c.send(ctx, method, path, body, 16<<20)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin client: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// GetRaw fetches a non-JSON answer (a recording's canonical form) of at
// most limit bytes, with its headers. An error answer is an *APIError.
func (c *Client) GetRaw(ctx context.Context, path string, limit int64) ([]byte, http.Header, error) {
	return c.send(ctx, http.MethodGet, path, nil, limit)
}

func (c *Client) send(ctx context.Context, method, path string, body any, limit int64) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("admin client: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("admin client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("admin client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("admin client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e apierr.Body
		if json.Unmarshal(b, &e) != nil || e.Error.Type == "" {
			msg := strings.TrimSpace(string(b))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			return nil, nil, &APIError{Status: resp.StatusCode, Type: "http", Message: msg, RequestID: resp.Header.Get(apierr.HeaderRequestID)}
		}
		return nil, nil, &APIError{Status: resp.StatusCode, Type: e.Error.Type, Message: e.Error.Message, RequestID: e.Error.RequestID}
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("admin client: %s %s: answer exceeds %d bytes", method, path, limit)
	}
	return b, resp.Header, nil
}

// ListApprovals lists requests; q holds state, requester, setting, kind,
// limit.
func (c *Client) ListApprovals(ctx context.Context, q url.Values) ([]View, error) {
	var out struct {
		Approvals []View `json:"approvals"`
	}
	p := "/v1/approvals"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	err := c.Do(ctx, http.MethodGet, p, nil, &out)
	return out.Approvals, err
}

// GetApproval returns one request.
func (c *Client) GetApproval(ctx context.Context, id string) (*View, error) {
	var v View
	return &v, c.Do(ctx, http.MethodGet, "/v1/approvals/"+url.PathEscape(id), nil, &v)
}

// Approve approves request id with a reason.
func (c *Client) Approve(ctx context.Context, id, reason string) (*View, error) {
	return c.act(ctx, "/v1/approvals/"+url.PathEscape(id)+"/approve", reason)
}

// Deny denies request id.
func (c *Client) Deny(ctx context.Context, id, reason string) (*View, error) {
	return c.act(ctx, "/v1/approvals/"+url.PathEscape(id)+"/deny", reason)
}

// Cancel withdraws the caller's own pending request id.
func (c *Client) Cancel(ctx context.Context, id, reason string) (*View, error) {
	return c.act(ctx, "/v1/approvals/"+url.PathEscape(id)+"/cancel", reason)
}

// Revoke ends grant id.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*View, error) {
	return c.act(ctx, "/v1/grants/"+url.PathEscape(id)+"/revoke", reason)
}

func (c *Client) act(ctx context.Context, path, reason string) (*View, error) {
	var v View
	return &v, c.Do(ctx, http.MethodPost, path, ReasonBody{Reason: reason}, &v)
}

// RequestGrant asks for a just-in-time grant.
func (c *Client) RequestGrant(ctx context.Context, b CreateBody) (*View, error) {
	var v View
	return &v, c.Do(ctx, http.MethodPost, "/v1/approvals", b, &v)
}

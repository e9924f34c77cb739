package gateway

import "strings"

// errAmbiguousPath is returned for paths that different servers could
// interpret differently; such requests are refused with 400.
type pathError struct{ msg string }

func (e *pathError) Error() string { return e.msg }

func badPath(msg string) error { return &pathError{msg: msg} }

// hasEncodedSlash reports whether a normalised path keeps a %2F.
func hasEncodedSlash(p string) bool { return strings.Contains(p, "%2F") }

// normalizePath returns the single canonical, escaped form of a request
// path, which route matching, policy, the audit record and the upstream all
// see. raw is the path as sent (r.URL.EscapedPath or RawPath).
//
// The rules (documented in docs/paths.md):
//   - percent-encodings of unreserved characters (A-Z a-z 0-9 - . _ ~) are
//     decoded, so %2e is a dot and %41 is "A"; other encodings are kept,
//     with upper-case hex;
//   - %2F stays encoded and is never a separator (routes refuse it unless
//     allow_encoded_slash is set);
//   - a backslash, raw or encoded (%5C), an encoded NUL or control byte, a
//     ';' (path parameters), a malformed escape, or a segment that ends in
//     '.' (other than the dot segments themselves) is refused as ambiguous;
//   - repeated slashes collapse to one; "." segments are removed and ".."
//     removes the previous segment; ".." above the root is refused;
//   - case is preserved (paths are case-sensitive), so /V1/ is not /v1/.
func normalizePath(raw string) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", badPath("path must start with /")
	}
	// Pass 1: decode unreserved escapes, validate every byte.
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !ishex(raw[i+1]) || !ishex(raw[i+2]) {
				return "", badPath("malformed percent-encoding in path")
			}
			v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case isUnreserved(v):
				b.WriteByte(v)
			case v == '\\':
				return "", badPath("encoded backslash in path")
			case v < 0x20 || v == 0x7f:
				return "", badPath("encoded control character in path")
			default:
				b.WriteByte('%')
				b.WriteByte(upperhex[v>>4])
				b.WriteByte(upperhex[v&15])
			}
		case c == '\\':
			return "", badPath("backslash in path")
		case c == ';':
			return "", badPath("path parameters (;) are not accepted")
		case c < 0x20 || c == 0x7f:
			return "", badPath("control character in path")
		default:
			b.WriteByte(c)
		}
	}
	decoded := b.String()
	// Pass 2: segments.
	trailing := strings.HasSuffix(decoded, "/")
	segs := strings.Split(decoded, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch s {
		case "":
			continue
		case ".":
			if i == len(segs)-1 {
				trailing = true
			}
			continue
		case "..":
			if len(out) == 0 {
				return "", badPath("path escapes the root (..)")
			}
			out = out[:len(out)-1]
			if i == len(segs)-1 {
				trailing = true
			}
			continue
		}
		if strings.HasSuffix(s, ".") {
			return "", badPath("path segment ends with a dot")
		}
		out = append(out, s)
	}
	p := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		p += "/"
	}
	return p, nil
}

// unescapePath decodes a normalised path for url.URL.Path. Only %XX
// escapes the normaliser kept remain, all of them valid.
func unescapePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

const upperhex = "0123456789ABCDEF"

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

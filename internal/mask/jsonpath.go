package mask

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// pathSeg is one step of a JSON path: a member name, an array index, or a
// wildcard.
type pathSeg struct {
	name string
	any  bool
}

type pathRule struct {
	segs []pathSeg
	rule *rule
}

// parseJSONPath parses the JSONPath subset used by json_paths rules:
// "$" followed by .name, ['name'], [N], [*] or .* steps.
func parseJSONPath(p string) ([]pathSeg, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, errors.New(`must start with "$"`)
	}
	rest := p[1:]
	var segs []pathSeg
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, ".."):
			return nil, errors.New("recursive descent (..) is not supported")
		case rest[0] == '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if name == "" {
				return nil, errors.New("empty member name")
			}
			if name == "*" {
				segs = append(segs, pathSeg{any: true})
			} else {
				segs = append(segs, pathSeg{name: name})
			}
			rest = rest[end:]
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New(`missing "]"`)
			}
			in := rest[1:end]
			rest = rest[end+1:]
			switch {
			case in == "*":
				segs = append(segs, pathSeg{any: true})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				segs = append(segs, pathSeg{name: in[1 : len(in)-1]})
			default:
				if _, err := strconv.ParseUint(in, 10, 32); err != nil {
					return nil, fmt.Errorf("bad index %q", in)
				}
				segs = append(segs, pathSeg{name: in})
			}
		default:
			return nil, fmt.Errorf("unexpected %q", rest)
		}
	}
	if len(segs) == 0 {
		return nil, errors.New("must name a field, not the whole document")
	}
	return segs, nil
}

// match reports whether the JSON pointer ptr is exactly the path.
func (r pathRule) match(ptr jsontext.Pointer) bool {
	i := 0
	for tok := range ptr.Tokens() {
		if i >= len(r.segs) {
			return false
		}
		if s := r.segs[i]; !s.any && s.name != tok {
			return false
		}
		i++
	}
	return i == len(r.segs)
}

// pointerPath renders a JSON pointer as a JSONPath-like location:
// /choices/0/message/content → $.choices[0].message.content.
func pointerPath(ptr jsontext.Pointer) string {
	var b strings.Builder
	b.WriteByte('$')
	for tok := range ptr.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
		} else if tok == "" || strings.ContainsAny(tok, ".[]'\" ") {
			b.WriteString("['" + tok + "']")
		} else {
			b.WriteString("." + tok)
		}
	}
	return b.String()
}

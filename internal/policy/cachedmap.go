package policy

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// maxCachedKeys bounds the per-decision lookup cache of one map.
const maxCachedKeys = 32

// cachedMap wraps a CEL map of Go values and remembers, for one
// decision, the converted value of each key looked up. CEL converts a Go
// value to a CEL value (allocating) on every lookup; fifty rules reading
// body.model would otherwise convert it fifty times. It lives inside a
// pooled activation, so its slices are reused across decisions.
type cachedMap struct {
	traits.Mapper
	keys []string
	vals []ref.Val // nil: key absent
}

func (m *cachedMap) reset(inner traits.Mapper) {
	m.Mapper = inner
	clear(m.vals)
	m.keys, m.vals = m.keys[:0], m.vals[:0]
}

// Find implements traits.Mapper with the cache in front.
func (m *cachedMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return m.Mapper.Find(key)
	}
	for i, ck := range m.keys {
		if ck == string(k) {
			v := m.vals[i]
			return v, v != nil
		}
	}
	v, found := m.Mapper.Find(key)
	if len(m.keys) < maxCachedKeys && (found || v == nil) {
		m.keys = append(m.keys, string(k))
		m.vals = append(m.vals, v)
	}
	return v, found
}

// Get implements traits.Indexer with the cache in front.
func (m *cachedMap) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.Mapper.Get(key)
}

// Contains implements traits.Container with the cache in front.
func (m *cachedMap) Contains(key ref.Val) ref.Val {
	if _, ok := key.(types.String); ok {
		v, found := m.Find(key)
		if found {
			return types.True
		}
		if v == nil {
			return types.False
		}
	}
	return m.Mapper.Contains(key)
}

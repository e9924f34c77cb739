package identity

import "time"

// Stats is a snapshot for metrics and readiness checks. It holds no
// credential.
type Stats struct {
	// CachedTokens is the number of entries in the verified-token cache.
	CachedTokens int
	// Issuers is one entry per configured issuer, in config order.
	Issuers []IssuerStats
}

// IssuerStats describes one issuer's key set.
type IssuerStats struct {
	Issuer string
	// Ready: keys have been fetched at least once (tokens can be verified).
	Ready bool
	// Keys is the number of signing keys held.
	Keys int
	// JWKSFetches counts JWKS fetch attempts since start.
	JWKSFetches int64
	// LastAttempt is the time of the last discovery/JWKS fetch attempt.
	LastAttempt time.Time
	// LastError is the last fetch error ("" after a success).
	LastError string
}

// Stats returns a snapshot of the cache and every issuer's key set.
func (a *Authenticator) Stats() Stats {
	s := Stats{CachedTokens: a.cache.len()}
	for _, ic := range a.cfg.Issuers {
		k := a.issuers[ic.Issuer].keys
		k.mu.RLock()
		is := IssuerStats{Issuer: ic.Issuer, Ready: k.haveKeys, Keys: len(k.all), JWKSFetches: k.fetches.Load(), LastAttempt: k.lastTry}
		if k.lastError != nil {
			is.LastError = k.lastError.Error()
		}
		k.mu.RUnlock()
		s.Issuers = append(s.Issuers, is)
	}
	return s
}

// Package websession holds the record a console login session is stored
// as, so the stores (internal/store/sqlite, internal/store/postgres) can
// persist sessions without importing the console, which itself reads
// the export, audit and approval services.
//
// A Record must never hold a usable credential: not the cookie value,
// not an access or ID token.
package websession

import "time"

// Record is one logged-in browser as a session store keeps it. Hash is
// the SHA-256 of the cookie value: the store never holds a usable
// credential, and a copied row cannot be replayed as a cookie (its hash
// would be hashed again).
type Record struct {
	// Hash is SHA-256(cookie value), 32 bytes.
	Hash []byte
	// Principal is the logged-in principal as JSON (identity.Principal;
	// no token, only issuer, subject, name, email and groups).
	Principal []byte
	// Created is the login time (the absolute lifetime runs from it).
	Created time.Time
	// LastSeen is the last activity (the idle lifetime runs from it).
	LastSeen time.Time
}

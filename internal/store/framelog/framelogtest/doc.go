// Package framelogtest rewrites a closed frame file (package framelog)
// the way an attacker with file access could, for tamper tests: Read
// decodes every frame into a File, the test edits it (a record's bytes,
// records deleted, swapped or inserted, a stored hash, every hash
// recomputed, frames dropped or reordered, a head replaced), and Write
// puts a new file in its place whose file header, frame headers and
// payload CRCs are all valid. CRCs are not a defence (decision 038): the
// Merkle tree and the signed heads must catch the edit, and tests use this
// package to show that they do.
//
// Write does not check the chain, so a test can also build files
// framelog.Open refuses (SwapFrames); FlipByte damages a frame without
// fixing its CRC.
//
// It is test support: it must never be imported by non-test code, and
// it writes files in place without the framelog package's durability
// (no fsync, no flock): the store using the file must be closed.
package framelogtest

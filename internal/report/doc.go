// Package report produces Warden's ISO/IEC 27001:2022 evidence report for
// a period and the evidence bundle that lets an auditor re-derive every
// number in it offline.
//
// The report is computed from the audit LOG — the canonical entry bytes
// the Merkle tree hashes — never from the search index, which is a
// derived copy. Generate reads the store, verifies it (every leaf and
// tree hash recomputed, every checkpoint signature checked, witness
// cosignatures checked when keys are given), takes the segment of the log
// that covers the period between two signed checkpoints, and computes
// every figure from its entries with Compute. Each figure carries the
// definition (the query over the entries) that produced it, so the JSON
// says what each number means.
//
// The same Compute runs in VerifyBundle on the bundled entries: a bundle
// verifies only if its entries are tied to signed checkpoints (the tree is
// recomputed), every inclusion and consistency proof checks, the manifest
// lists exactly the files present with their SHA-256, and every figure,
// exception and sample of the bundled report JSON equals what the
// entries give.
//
// Renderings: JSON (machine-readable, the reference), a self-contained
// HTML page (html/template, inline SVG charts, printable) and a PDF drawn
// natively with github.com/go-pdf/fpdf.
//
// What the package must never do: read the search index for a figure,
// contact the network, or print anything an entry does not already hold
// (entries never hold secrets or raw masked values).
package report

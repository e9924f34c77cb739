# Benchmarks (see bench/README.md). Other targets may be added by the lead.
.PHONY: bench bench-short

# Full run: every target, 3 interleaved repetitions (< 10 minutes).
bench:
	go run ./bench/cmd/wardenbench

# Quick look: 1 repetition of 1.5 s per measurement (< 2 minutes).
bench-short:
	go run ./bench/cmd/wardenbench -short


# Shared by bench/*-compare.sh: build a base revision and the working tree
# as two test binaries of one package, then run them interleaved.
# Sourced, not run; the caller sets base_rev and rounds.

# compare_build PKG BENCHFILE [HELPER...] builds "$tmp/base.test"
# (base_rev with the working tree's BENCHFILE and HELPER files, so both
# run the same workload and metrics) and "$tmp/new.test" (the working
# tree). $tmp is removed on exit.
compare_build() {
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	git archive "$base_rev" | tar -x -C "$tmp"
	local pkg=$1 f
	shift
	for f in "$@"; do
		mkdir -p "$tmp/$(dirname "$f")"
		cp "$f" "$tmp/$f"
	done
	(cd "$tmp" && go test -c -o "$tmp/base.test" "./$pkg")
	go test -c -o "$tmp/new.test" "./$pkg"
}

# compare_rounds FN calls FN base and FN new in each of $rounds rounds,
# alternating which goes first, so drift in the machine's load falls on
# both alike.
compare_rounds() {
	local round v order
	for round in $(seq "$rounds"); do
		order="base new"
		[ $((round % 2)) -eq 0 ] && order="new base"
		for v in $order; do
			"$1" "$v"
		done
	done
}

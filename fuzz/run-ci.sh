#!/usr/bin/env bash
# Fuzzes every target for a while on the stable toolchain; fails on any
# finding and prints the input that caused it.
#
#   fuzz/run-ci.sh [SECONDS_PER_TARGET]     (default 60)
#
# Installs cargo-fuzz from crates.io if it is missing. Builds without a
# sanitizer (`-s none`): sanitizers need a nightly compiler, and the targets
# assert their invariants themselves. Each target starts from its checked-in
# seeds (fuzz/corpus-seed/<target>/) plus whatever an earlier run left in
# fuzz/corpus/<target>/ (ignored by git); findings land in
# fuzz/artifacts/<target>/. To make a finding permanent, fix it, then copy the
# file into fuzz/corpus-seed/<target>/: `cargo test` replays it from then on.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 64
	;;
esac

cd "$(dirname "$0")"
targets=(frame message scan journal outbound engine process backend bridge)

# libFuzzer is C++; cargo-fuzz's libfuzzer-sys compiles it with the system's
# C++ compiler.
if ! command -v c++ >/dev/null 2>&1; then
	echo "fuzz: installing a C++ compiler for libFuzzer"
	apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz"
	cargo install cargo-fuzz --locked
fi
echo "fuzz: $(cargo fuzz --version), $(rustc --version)"

# One build for all targets: release, debug assertions on, no sanitizer.
cargo fuzz build -s none

# libFuzzer flags:
# -max_len: inputs up to 16 KiB, enough for deep nesting (>128 levels), long
#   batches and over-long lines at the small frame limits the targets pick;
#   bigger seeds are read truncated (the replay test runs them whole).
# -timeout: an input that takes 10 s is a finding too (a slow input).
# -rss_limit_mb: memory must stay bounded; 2 GiB is far above any honest use.
flags=(-max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

status=0
for target in "${targets[@]}"; do
	mkdir -p "corpus/$target" "artifacts/$target"
	marker="$(mktemp)"
	log="$(mktemp)"
	echo "fuzz: $target for ${seconds}s"
	failed=0
	if cargo fuzz run "$target" -s none "corpus/$target" "corpus-seed/$target" -- "${flags[@]}" >"$log" 2>&1; then
		grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::number_of_executed_units)' "$log" || tail -n 3 "$log"
	else
		failed=1
		echo "fuzz: $target FAILED; the end of its log:"
		tail -n 80 "$log"
	fi
	# Every input libFuzzer saved during this run (crash-, timeout-, oom-, slow-unit-...).
	found=0
	while IFS= read -r -d '' input; do
		found=1
		failed=1
		echo "fuzz: $target finding $input ($(wc -c <"$input") bytes)"
		echo "base64: $(base64 -w0 <"$input")"
		echo "hex (first 4 KiB):"
		head -c 4096 "$input" | od -An -tx1 -v
		echo "replay: cd fuzz && cargo fuzz run $target -s none $input"
	done < <(find "artifacts/$target" -type f -newer "$marker" -print0)
	if [ "$failed" = 1 ]; then
		status=1
		if [ "$found" = 0 ]; then
			echo "fuzz: $target failed without saving an input (see the log above)"
		fi
	fi
	rm -f "$marker" "$log"
done

if [ "$status" = 0 ]; then
	echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a finding"
fi
exit "$status"

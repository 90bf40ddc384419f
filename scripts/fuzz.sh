#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the parsers of outside input.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]   one target for SECONDS
#   scripts/fuzz.sh all SECONDS                           every target, SECONDS each
#   scripts/fuzz.sh list                                  the targets
# Targets: sales_file (valid files from the typed model with hostile leaves, plain or gzip,
# through validation and the planner), sales_bytes (any bytes, plain or gzip), config (TOML
# and env twins), duration, conninfo (connection strings, against tokio-postgres' parser),
# now (--now), receive_body (a message body: compression header and property, plain/gzip/zip,
# the size limit), amqp_url (receive.amqp_url and the chain's central URL, and the shovel
# URI). The corpus grows in fuzz/corpus/TARGET (only the seed-* files are kept in git); a
# crash is saved under fuzz/artifacts/TARGET and the run exits non-zero: turn it into a
# regression test (tests/parser_props.rs or the module's unit tests).
#
# cargo-fuzz needs the nightly compiler flags (-Zsanitizer); the toolchain here is stable,
# so RUSTC_BOOTSTRAP=1 unlocks them. FUZZ_SANITIZER (default address) picks the sanitizer;
# FUZZ_JOBS runs that many fuzzing processes on one target (default 1); FUZZ_DEV=1 builds
# without optimisation (quicker to build, slower to run: CI's brief runs); FUZZ_CI=1 runs
# each target from its committed seeds only, with a fixed seed and SECONDS read as a number
# of runs, so CI's brief run is the same every time (a finding there is a real one).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
targets=$(cargo fuzz list)
what=${1:?usage: scripts/fuzz.sh TARGET|all|list SECONDS}
if [ "$what" = list ]; then
    echo "$targets"
    exit 0
fi
secs=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}
shift 2
sanitizer=${FUZZ_SANITIZER:-address}
build=(--sanitizer "$sanitizer")
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    build+=(--dev)
fi
run_one() {
    local t=$1
    shift
    mkdir -p "corpus/$t"
    if [ "${FUZZ_CI:-0}" = 1 ]; then
        local seeds
        seeds=$(mktemp -d)
        cp corpus/"$t"/seed-* "$seeds"/ 2>/dev/null || true
        echo "[fuzz] $t: $secs runs from the seeds" >&2
        cargo fuzz run "${build[@]}" "$t" "$seeds" -- -seed=1 -runs="$secs" -rss_limit_mb=4096 \
            -timeout=20 -print_final_stats=1 "$@"
        rm -rf "$seeds"
        return
    fi
    echo "[fuzz] $t for ${secs}s" >&2
    local parallel=()
    if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
        parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    fi
    cargo fuzz run "${build[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
        "${parallel[@]}" "$@"
}
if [ "$what" = all ]; then
    cargo fuzz build "${build[@]}"
    for t in $targets; do
        run_one "$t" "$@"
    done
else
    echo "$targets" | grep -qx "$what" || { echo "[fuzz] no target $what; targets: $targets" >&2; exit 2; }
    run_one "$what" "$@"
fi

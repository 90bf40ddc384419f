# What the chain-size benchmarks share (sourced after scripts/lib/pg.sh, not run).
#
#   bench_begin DB    builds csjobs (release) as $CSJOBS, finds the server (pg_bench_server:
#                     $ADMIN, $SERVER), makes a work directory $work, exports
#                     CSJOBS_CASHSERVER_DATABASE_URL for DB; on exit drops DB (kept with
#                     KEEP=1), removes $work and stops a throwaway server.
#   bench_reuse       true when KEEP=1 and DB is there already: the data need not be built.
#   secs_and_rss CMD… elapsed seconds and peak RSS (KB) of one whole process (its exit code
#                     is ignored: status and revenue-watch exit 3 on data with problems).
#   median X…         the median of the numbers.

bench_begin() {
    BENCH_DB=$1
    KEEP=${KEEP:-0}
    cargo build --release --locked --quiet --bin csjobs
    CSJOBS=$PWD/target/release/csjobs
    pg_bench_server
    work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-bench.XXXXXX")
    trap bench_end EXIT
    export CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$BENCH_DB"
}

bench_end() {
    [ "$KEEP" = 1 ] || psql "$ADMIN" -qc "drop database if exists $BENCH_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$work"
    pg_stop_throwaway 2>/dev/null || true
}

bench_reuse() {
    [ "$KEEP" = 1 ] && [ "$(psql "$ADMIN" -Atc "select 1 from pg_database where datname = '$BENCH_DB'")" = 1 ]
}

secs_and_rss() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>/dev/null || true; tail -n 1 "$work/time"; }

median() { python3 -c "import statistics; print(statistics.median(float(x) for x in '$*'.split()))"; }

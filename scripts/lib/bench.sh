# What the benchmarks share (sourced, not run). Sourcing it sources scripts/lib/pg.sh and
# sets PGOPTIONS (client_min_messages=warning: psql prints no NOTICE lines among the figures).
#
#   bench_begin DB    builds csjobs (release) as $CSJOBS, finds the server (pg_bench_server:
#                     $ADMIN, $SERVER), makes a work directory $work, exports
#                     CSJOBS_CASHSERVER_DATABASE_URL for DB; on exit drops DB (kept with
#                     KEEP=1), removes $work and stops a throwaway server.
#   bench_reuse       true when KEEP=1 and DB is there already: the data need not be built.
#   bench_data WHAT FILL
#                     the data of DB: reused (bench_reuse), or DB made anew, migrated, filled
#                     by the function FILL, then VACUUM ANALYZE; WHAT says what is built.
#   bench_job_dirs    the job's directories under $work, exported as CSJOBS_*_DIR.
#   bench_nojit FILE  writes FILE without .sql + -nojit.sql: the same query after `set jit = off`.
#   BENCH_PSQL        psql against DB, unaligned, stopping on an error: a command line
#                     (an array), for secs_and_rss too: "${BENCH_PSQL[@]}" -f FILE.
#   secs_and_rss CMD… elapsed seconds and peak RSS (KB) of one whole process (its exit code
#                     is ignored: status and revenue-watch exit 3 on data with problems).
#   now               the time in seconds (for the scripts that time with two readings).
#   median X… / min X… / max_mb KB…
#                     the median, the least, the largest in MB (of numbers in KB).
#   ratio X Y         X / Y.
#   bench_row WIDTH NAME SECS BASE [MB]
#                     one line of a results table: name, seconds, × the baseline, peak RSS.
#   bench_sql_beside_jobs WIDTH TITLE SUBTITLE SQL_NAME NAME_A NAME_B
#                     the monitoring benchmarks' runs: REPEAT times, each a whole process,
#                     the baseline $work/baseline.sql, the same with JIT off (bench_nojit),
#                     then the command lines in the arrays JOB_A and JOB_B (psql gets the
#                     options in the array SQL_OPTS too); prints each run, then the medians
#                     as a table, × the faster of the two SQL runs, with peak RSS.

. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"

export PGOPTIONS="-c client_min_messages=warning"

bench_begin() {
    BENCH_DB=$1
    KEEP=${KEEP:-0}
    cargo build --release --locked --quiet --bin csjobs
    CSJOBS=$PWD/target/release/csjobs
    pg_bench_server
    work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-bench.XXXXXX")
    trap bench_end EXIT
    export CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$BENCH_DB"
    BENCH_PSQL=(psql "$SERVER/$BENCH_DB" -X -q -A -v ON_ERROR_STOP=1)
}

bench_end() {
    [ "$KEEP" = 1 ] || psql "$ADMIN" -qc "drop database if exists $BENCH_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$work"
    pg_stop_throwaway 2>/dev/null || true
}

bench_reuse() {
    [ "$KEEP" = 1 ] && [ "$(psql "$ADMIN" -Atc "select 1 from pg_database where datname = '$BENCH_DB'")" = 1 ]
}

bench_data() {
    if bench_reuse; then
        echo "== reusing the database $BENCH_DB (KEEP=1)" >&2
        return
    fi
    echo "== building the database: $1" >&2
    psql "$ADMIN" -qc "drop database if exists $BENCH_DB with (force)" -c "create database $BENCH_DB" >/dev/null
    "$CSJOBS" -q migrate --cashserver >/dev/null
    local t0
    t0=$(date +%s)
    "$2"
    psql "$SERVER/$BENCH_DB" -qc "vacuum analyze" >/dev/null
    echo "   built in $(( $(date +%s) - t0 )) s" >&2
}

bench_job_dirs() {
    mkdir -p "$work"/{queue,processed,error,broken,backup,astu}
    export CSJOBS_QUEUE_DIR=$work/queue CSJOBS_PROCESSED_DIR=$work/processed CSJOBS_ERROR_DIR=$work/error \
        CSJOBS_BROKEN_DIR=$work/broken CSJOBS_BACKUP_DIR=$work/backup CSJOBS_ASTU_OUTBOX=$work/astu
}

bench_nojit() { { echo "set jit = off;"; cat "$1"; } > "${1%.sql}-nojit.sql"; }

secs_and_rss() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>/dev/null || true; tail -n 1 "$work/time"; }

now() { date +%s.%N; }

median() { python3 -c "import statistics; print(statistics.median(float(x) for x in '$*'.split()))"; }

min() { python3 -c "print(min(float(x) for x in '$*'.split()))"; }

max_mb() { python3 -c "print(max(int(x) for x in '$*'.split()) // 1024)"; }

ratio() { python3 -c "print($1 / $2)"; }

bench_row() { printf "%-${1}s %9.3f %8.2f %12s\n" "$2" "$3" "$(ratio "$3" "$4")" "${5:--}"; }

bench_sql_beside_jobs() {
    # The baseline is $BASELINE (default $work/baseline.sql, and its -nojit twin from
    # bench_nojit); JOB_A is timed, and JOB_B too unless it is empty (name_b then unused).
    local width=$1 title=$2 subtitle=$3 sql_name=$4 name_a=$5 name_b=${6:-}
    local base_sql=${BASELINE:-$work/baseline.sql}
    local sql_t=() nojit_t=() a_t=() b_t=() a_rss=() b_rss=() r t m line
    for r in $(seq "$REPEAT"); do
        read -r t _ < <(secs_and_rss "${BENCH_PSQL[@]}" "${SQL_OPTS[@]}" -f "$base_sql"); sql_t+=("$t")
        read -r t _ < <(secs_and_rss "${BENCH_PSQL[@]}" "${SQL_OPTS[@]}" -f "${base_sql%.sql}-nojit.sql"); nojit_t+=("$t")
        read -r t m < <(secs_and_rss "${JOB_A[@]}"); a_t+=("$t"); a_rss+=("$m")
        line="   run $r: SQL ${sql_t[-1]} s, SQL without JIT ${nojit_t[-1]} s, $name_a ${a_t[-1]} s (${a_rss[-1]} KB)"
        if [ "${#JOB_B[@]}" -gt 0 ]; then
            read -r t m < <(secs_and_rss "${JOB_B[@]}"); b_t+=("$t"); b_rss+=("$m")
            line="$line, $name_b ${b_t[-1]} s (${b_rss[-1]} KB)"
        fi
        echo "$line" >&2
    done
    local s n a base
    s=$(median "${sql_t[*]}"); n=$(median "${nojit_t[*]}"); a=$(median "${a_t[*]}")
    base=$(min "$s $n")
    echo
    echo "$title (median of $REPEAT; PostgreSQL $(psql "$ADMIN" -Atc 'show server_version'), $(nproc) cores)"
    echo "$subtitle"
    printf "%-${width}s %9s %8s %12s\n" "" seconds "x SQL" "peak RSS MB"
    bench_row "$width" "psql, $sql_name" "$s" "$base"
    bench_row "$width" "psql, the same with JIT off" "$n" "$base"
    bench_row "$width" "$name_a" "$a" "$base" "$(max_mb "${a_rss[*]}")"
    if [ "${#JOB_B[@]}" -gt 0 ]; then
        bench_row "$width" "$name_b" "$(median "${b_t[*]}")" "$base" "$(max_mb "${b_rss[*]}")"
    fi
}

#!/usr/bin/env bash
# Benchmark of `csjobs reconcile --shop N` (per shop and day) beside its baseline, measured
# in the same run on the same database: the very same query (jobs/reconcile/per_shop_day.sql,
# the file the binary embeds) prepared and executed by psql, output to /dev/null. Both times
# are whole processes (connect, query, output), best of REPEAT after one warm-up each.
#
#   scripts/bench-reconcile.sh               # 2,000,000 items in one shop
#   SCALE=40 REPEAT=5 scripts/bench-reconcile.sh
#
# Data: scripts/gen_sales.rs, profile large with one shop (2 cashes x 5*SCALE shifts x
# 2,000 checks x 5 items; SCALE=20 gives 2,000,000 items, 400,000 checks over 100 days),
# loaded with psql \copy (the loader has its own benchmark), then VACUUM ANALYZE.
# Target (issue "export-astu, reconcile"): csjobs <= 1.5 x the SQL time.
# The server: CSJOBS_BENCH_DATABASE_URL, else the local one on 127.0.0.1:5432, else a
# throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/pg.sh

export PGOPTIONS="-c client_min_messages=warning"
REPEAT=${REPEAT:-3}
SCALE=${SCALE:-20}
SHOP=100
DB=csjobs_bench_reconcile

cargo build --release --locked --quiet --bin csjobs --example gen_sales
CSJOBS=$PWD/target/release/csjobs
GEN=$PWD/target/release/examples/gen_sales

pg_bench_server
work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-bench.XXXXXX")
cleanup() {
    psql "$ADMIN" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$work"
    pg_stop_throwaway 2>/dev/null || true
}
trap cleanup EXIT

echo "== generating and loading (scale $SCALE)" >&2
"$GEN" --profile large --shops 1 --scale "$SCALE" --out "$work/queue" --csv "$work/csv" 2>&1 | sed 's/^/   /' >&2
rm -rf "$work/queue" # only the rows are needed
psql "$ADMIN" -qc "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$DB" "$CSJOBS" -q migrate --cashserver >/dev/null
csv=$work/csv
psql "$SERVER/$DB" -q -1 -v ON_ERROR_STOP=1 -f "$csv/dictionary.sql" \
    -c "\copy workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, time_end, loaded_at) from '$csv/workshift.csv' csv" \
    -c "\copy document (documentid, workshiftid, docnum, doctype, time_beg, time_end, total) from '$csv/document.csv' csv" \
    -c "\copy goodsitem (documentid, posnum, ware, name, dept, quantity, price, discount, total) from '$csv/goodsitem.csv' csv" \
    -c "\copy payment (documentid, paynum, paytype, amount, change) from '$csv/payment.csv' csv" >/dev/null
rm -rf "$csv"
psql "$SERVER/$DB" -qc "vacuum analyze" >/dev/null
items=$(psql "$SERVER/$DB" -Atc "select count(*) from goodsitem g join document d using (documentid) join workshift w using (workshiftid) where w.shopcode = $SHOP")
docs=$(psql "$SERVER/$DB" -Atc "select count(*) from document")

# The baseline: the job's own query, prepared with the same parameters.
{
    echo "prepare q as"
    cat jobs/reconcile/per_shop_day.sql
    echo ";"
    echo "execute q($SHOP, null, null);"
} > "$work/baseline.sql"

now() { date +%s.%N; }
min() { python3 -c "print(min(float(x) for x in '$*'.split()))"; }
sql_run() { psql "$SERVER/$DB" -X -q -A -v ON_ERROR_STOP=1 -f "$work/baseline.sql" > "$work/sql.out"; }
job_run() { CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$DB" "$CSJOBS" -q reconcile --shop "$SHOP" "$@"; }

sql_run; job_run --format csv > "$work/job.csv" # warm-up
# Both must give the same days, and the job's totals must match the query's.
sql_days=$(($(wc -l < "$work/sql.out") - 2)) # header and "(N rows)"
job_days=$(($(wc -l < "$work/job.csv") - 1))
if [ "$sql_days" != "$job_days" ]; then echo "MISMATCH: psql $sql_days days, csjobs $job_days" >&2; exit 1; fi
sql_sum=$(awk -F'|' 'NR > 1 && NF > 2 { s += $3 + $4 } END { printf "%.2f", s / 100 }' "$work/sql.out")
job_sum=$(awk -F',' 'NR > 1 { s += $3 + $4 } END { printf "%.2f", s }' "$work/job.csv")
if [ "$sql_sum" != "$job_sum" ]; then echo "MISMATCH: psql sales $sql_sum, csjobs $job_sum" >&2; exit 1; fi

sql_times=() csv_times=() xlsx_times=()
for r in $(seq "$REPEAT"); do
    t0=$(now); sql_run; t1=$(now)
    job_run --format csv > /dev/null; t2=$(now)
    job_run --output "$work/report.xlsx"; t3=$(now)
    sql_times+=("$(python3 -c "print($t1 - $t0)")")
    csv_times+=("$(python3 -c "print($t2 - $t1)")")
    xlsx_times+=("$(python3 -c "print($t3 - $t2)")")
    echo "   run $r: psql ${sql_times[-1]} s, csjobs csv ${csv_times[-1]} s, xlsx ${xlsx_times[-1]} s" >&2
done
s=$(min "${sql_times[*]}"); c=$(min "${csv_times[*]}"); x=$(min "${xlsx_times[*]}")
echo
echo "reconcile per shop and day beside the same query in psql (best of $REPEAT; PostgreSQL $(psql "$ADMIN" -Atc 'show server_version'), $(nproc) cores)"
printf '%9s %9s %5s %9s %9s %6s %9s %6s\n' items documents days "psql s" "csv s" ratio "xlsx s" ratio
python3 -c "print(f'{$items:>9} {$docs:>9} {$job_days:>5} {$s:>9.3f} {$c:>9.3f} {$c / $s:>6.2f} {$x:>9.3f} {$x / $s:>6.2f}')"
echo "target: csjobs <= 1.5 x psql"

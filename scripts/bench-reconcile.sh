#!/usr/bin/env bash
# Benchmark of `csjobs reconcile --shop N` (per shop and day) beside two baselines, measured
# in the same run on the same database, each a whole psql process (connect, query, output):
#   own SQL      the job's very query (jobs/reconcile/per_shop_day.sql with pay_split.sql in
#                place, the files the binary embeds), prepared and executed by psql: what the
#                job adds to its SQL;
#   plain SQL    the same aggregation written independently, as a DBA would (one join and
#                GROUP BY, money formatted in SQL), printed by psql --csv.
# The plain query's CSV must equal the job's CSV byte for byte (every column of every day),
# so the benchmark also checks the report on 2 million items. Best of REPEAT after a warm-up.
#
#   scripts/bench-reconcile.sh               # 2,000,000 items in one shop
#   SCALE=40 REPEAT=5 scripts/bench-reconcile.sh
#
# Data: scripts/gen_sales.rs, profile large with one shop (2 cashes x 5*SCALE shifts x
# 2,000 checks x 5 items; SCALE=20 gives 2,000,000 items, 400,000 checks over 100 days),
# loaded with psql \copy (the loader has its own benchmark), made a realistic mix (returns,
# open documents, cash_in/cash_out per shift: see below), then VACUUM ANALYZE.
# Target (issue "export-astu, reconcile"): csjobs <= 1.5 x the SQL time (the faster baseline).
# The server: CSJOBS_BENCH_DATABASE_URL, else the local one on 127.0.0.1:5432, else a
# throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

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
# The generator writes closed cash and card sales only. Give every column figures: one
# document in 10 becomes a return, one in 97 stays open (excluded), and each shift gets a
# cash_in at its opening and a cash_out at its close (explicit ids: \copy took them).
# Documents are never updated by csjobs (a trigger of 0007 refuses it, to keep the revenue
# sums right): this preparation does it by hand, with the trigger off, and then rebuilds the
# sums as a DBA would (`select revenue_hour_rebuild()`).
psql "$SERVER/$DB" -q -1 -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
alter table document disable trigger document_revenue_no_update;
update document set doctype = 'return' where documentid % 10 = 0;
update document set time_end = null where documentid % 97 = 0;
create temp table ops as
select (select max(documentid) from document) + row_number() over (order by workshiftid, k) as documentid,
       workshiftid, k, time_beg, time_end
from workshift, (values ('cash_in'), ('cash_out')) as t(k)
where time_end is not null;
insert into document (documentid, workshiftid, docnum, doctype, time_beg, time_end, total)
select documentid, workshiftid, case k when 'cash_in' then 900001 else 900002 end, k,
       case k when 'cash_in' then time_beg else time_end end,
       case k when 'cash_in' then time_beg else time_end end,
       case k when 'cash_in' then 5000.00 else 20000.00 end
from ops;
insert into payment (documentid, paynum, paytype, amount, change)
select documentid, 1, 'cash', case k when 'cash_in' then 5000.00 else 20000.00 end, 0 from ops;
select setval(pg_get_serial_sequence('document', 'documentid'), (select max(documentid) from document));
alter table document enable trigger document_revenue_no_update;
select revenue_hour_rebuild();
SQL
psql "$SERVER/$DB" -qc "vacuum analyze" >/dev/null
items=$(psql "$SERVER/$DB" -Atc "select count(*) from goodsitem g join document d using (documentid) join workshift w using (workshiftid) where w.shopcode = $SHOP")
docs=$(psql "$SERVER/$DB" -Atc "select count(*) from document")

# The baseline: the job's own query (with the shared cash/non-cash split in place, as
# ReportKind::sql puts it), prepared with the same parameters.
{
    echo "prepare q as"
    python3 -c "import sys; print(open(sys.argv[1]).read().replace('{PAY_SPLIT}', open(sys.argv[2]).read()))" \
        jobs/reconcile/per_shop_day.sql jobs/reconcile/pay_split.sql
    echo ";"
    echo "execute q($SHOP, null, null);"
} > "$work/baseline.sql"

# The independent baseline: one join, one GROUP BY, money as text with 2 fraction digits.
cat > "$work/plain.sql" <<SQL
select d.time_end::date as date,
       count(distinct d.documentid) as documents,
       to_char(coalesce(sum(p.amount - p.change) filter (where d.doctype = 'sale' and p.paytype = 'cash'), 0), 'FM99999999999999990.00') as sales_cash,
       to_char(coalesce(sum(p.amount - p.change) filter (where d.doctype = 'sale' and p.paytype <> 'cash'), 0), 'FM99999999999999990.00') as sales_noncash,
       to_char(coalesce(sum(p.amount - p.change) filter (where d.doctype = 'return' and p.paytype = 'cash'), 0), 'FM99999999999999990.00') as returns_cash,
       to_char(coalesce(sum(p.amount - p.change) filter (where d.doctype = 'return' and p.paytype <> 'cash'), 0), 'FM99999999999999990.00') as returns_noncash,
       to_char(coalesce(sum(case when d.doctype = 'sale' then p.amount - p.change when d.doctype = 'return' then p.change - p.amount end)
                        filter (where p.paytype = 'cash'), 0), 'FM99999999999999990.00') as revenue_cash,
       to_char(coalesce(sum(case when d.doctype = 'sale' then p.amount - p.change when d.doctype = 'return' then p.change - p.amount end)
                        filter (where p.paytype <> 'cash'), 0), 'FM99999999999999990.00') as revenue_noncash,
       to_char(coalesce(sum(case when d.doctype in ('sale', 'cash_in') then p.amount - p.change else p.change - p.amount end)
                        filter (where p.paytype = 'cash'), 0), 'FM99999999999999990.00') as drawer
from workshift w
join document d on d.workshiftid = w.workshiftid
left join payment p on p.documentid = d.documentid
where w.shopcode = $SHOP and d.time_end is not null
group by 1
order by 1;
SQL

sql_run() { psql "$SERVER/$DB" -X -q -A -v ON_ERROR_STOP=1 -f "$work/baseline.sql" > "$work/sql.out"; }
plain_run() { psql "$SERVER/$DB" -X -q --csv -v ON_ERROR_STOP=1 -f "$work/plain.sql" > "$work/plain.csv"; }
job_run() { CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$DB" "$CSJOBS" -q reconcile --shop "$SHOP" "$@"; }

sql_run; plain_run; job_run --format csv > "$work/job.csv" # warm-up
if ! cmp -s "$work/plain.csv" "$work/job.csv"; then
    echo "MISMATCH: the plain SQL and csjobs reports differ:" >&2
    diff "$work/plain.csv" "$work/job.csv" | head -20 >&2
    exit 1
fi
# Both must give the same days, and the job's totals must match the query's.
sql_days=$(($(wc -l < "$work/sql.out") - 2)) # header and "(N rows)"
job_days=$(($(wc -l < "$work/job.csv") - 1))
if [ "$sql_days" != "$job_days" ]; then echo "MISMATCH: psql $sql_days days, csjobs $job_days" >&2; exit 1; fi
sql_sum=$(awk -F'|' 'NR > 1 && NF > 2 { s += $3 + $4 } END { printf "%.2f", s / 100 }' "$work/sql.out")
job_sum=$(awk -F',' 'NR > 1 { s += $3 + $4 } END { printf "%.2f", s }' "$work/job.csv")
if [ "$sql_sum" != "$job_sum" ]; then echo "MISMATCH: psql sales $sql_sum, csjobs $job_sum" >&2; exit 1; fi

sql_times=() plain_times=() csv_times=() xlsx_times=()
for r in $(seq "$REPEAT"); do
    t0=$(now); sql_run; t1=$(now)
    plain_run; t2=$(now)
    job_run --format csv > /dev/null; t3=$(now)
    job_run --output "$work/report.xlsx"; t4=$(now)
    sql_times+=("$(python3 -c "print($t1 - $t0)")")
    plain_times+=("$(python3 -c "print($t2 - $t1)")")
    csv_times+=("$(python3 -c "print($t3 - $t2)")")
    xlsx_times+=("$(python3 -c "print($t4 - $t3)")")
    echo "   run $r: psql own SQL ${sql_times[-1]} s, plain SQL ${plain_times[-1]} s, csjobs csv ${csv_times[-1]} s, xlsx ${xlsx_times[-1]} s" >&2
done
s=$(min "${sql_times[*]}"); p=$(min "${plain_times[*]}"); c=$(min "${csv_times[*]}"); x=$(min "${xlsx_times[*]}")
b=$(python3 -c "print(min($s, $p))")
echo
echo "reconcile per shop and day beside the same aggregation in psql (best of $REPEAT; PostgreSQL $(psql "$ADMIN" -Atc 'show server_version'), $(nproc) cores)"
echo "$items items, $docs documents, $job_days days; the plain SQL's CSV equals csjobs' byte for byte"
printf '%-28s %9s %8s\n' "" seconds "x SQL"
python3 -c "
b = $b
for name, t in [('psql, own SQL', $s), ('psql, plain SQL', $p), ('csjobs reconcile --format csv', $c), ('csjobs reconcile xlsx', $x)]:
    print(f'{name:<28} {t:>9.3f} {t / b:>8.2f}')
"
echo "target: csjobs <= 1.5 x the faster SQL baseline"
echo
echo "the report's first two days:"
head -3 "$work/job.csv"

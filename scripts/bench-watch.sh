#!/usr/bin/env bash
# Benchmark of `csjobs revenue-watch --dry-run` and `csjobs report` on a chain-size cash
# server, beside a baseline measured in the same run on the same database: one hand-written
# SQL query, run by psql as a whole process (connect, query, output), computing per shop
# today's revenue up to now's time of day and, for each of the four same weekdays before,
# the revenue up to that time and over the whole day (what the profile needs to leave closed
# days out). It is written independently of the job's query (filtered aggregates over OR-ed
# ranges instead of a join on generated days). The baseline runs with the server's defaults
# and with JIT off (as csjobs runs); the ratio is to the faster of the two.
#
#   scripts/bench-watch.sh                 # 500 shops, 1,000 registers, ~10,000,000 documents
#   DOCS_PER_SHIFT=60 REPEAT=5 scripts/bench-watch.sh     # a smaller chain
#   KEEP=1 scripts/bench-watch.sh          # keep the database; a second run reuses it
#
# Data, made by SQL on the server: 500 shops with two registers each, one shift per register
# and day over five weeks and today up to now (2026-11-24 15:00, a Tuesday), DOCS_PER_SHIFT
# documents a shift from 08:00 to 22:00 (one in 20 a return); every 10th shop closed on
# Sundays; every 25th shop sold nothing today after 11:00 (its revenue is low). A day of load
# log. Then VACUUM ANALYZE. Both sides' figures are compared shop by shop before timing.
# Then the period view, `report --from 2026-10-25 --to 2026-11-24` (31 days, every shop),
# beside one hand-written SQL of the same per-day sums (per shop, register and day: checks
# and revenue of the 31 days and the four weeks before them; today up to now), the page's
# every register-day checked against it.
# Targets (issues "Monitoring II", #23): <= 1.5 x the SQL and under 5 s; peak RSS < 200 MB.
# The server: CSJOBS_BENCH_DATABASE_URL, else the local one on 127.0.0.1:5432, else a
# throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

REPEAT=${REPEAT:-3}
DOCS_PER_SHIFT=${DOCS_PER_SHIFT:-286}
DB=csjobs_bench_watch_$DOCS_PER_SHIFT
NOW=2026-11-24T15:00:00+03:00

fill() {
psql "$SERVER/$DB" -q -v ON_ERROR_STOP=1 -v docs="$DOCS_PER_SHIFT" >/dev/null <<'SQL'
set synchronous_commit = off;
set maintenance_work_mem = '256MB';
insert into shop (shopcode, name, city, address)
select s, 'Магазин №' || s, 'Город ' || (s % 50), 'ул. Центральная, ' || s from generate_series(1, 500) s;
insert into cash (cashcode, shopcode, name)
select c, (c - 1) % 500 + 1, 'Касса ' || c from generate_series(1, 1000) c;
insert into shop_hours (shopcode, weekday, opens, closes)
select s, d, '08:00', '22:00' from generate_series(1, 500) s, generate_series(1, 7) d
 where not (s % 10 = 0 and d = 7);
-- One shift per register and day, 2026-10-20 (a Tuesday, five weeks back) to today.
insert into workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, time_end, loaded_at)
select row_number() over (order by day, c), c, (c - 1) % 500 + 1, k + 1,
       day + time '08:00', case when day < date '2026-11-24' then day + time '22:00' end, now()
  from generate_series(1, 1000) c, generate_series(0, 35) k, lateral (select date '2026-10-20' + k as day) g
 where not (((c - 1) % 500 + 1) % 10 = 0 and extract(isodow from day) = 7);
select setval(pg_get_serial_sequence('workshift', 'workshiftid'), (select max(workshiftid) from workshift));
-- The documents without the revenue index (as the migration made it), built once afterwards.
select indexdef as revenue_index from pg_indexes where indexname = 'document_time_end_idx' \gset
drop index document_time_end_idx;
insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
select w.workshiftid, k, case when k % 20 = 0 then 'return' else 'sale' end, t - interval '2 minutes', t,
       (50 + (k * 37 + w.shopcode * 11) % 900 + w.shopcode % 7 * 10)::numeric(15,2)
  from workshift w, generate_series(1, :docs) k,
       lateral (select w.time_beg + (k - 1) * interval '14 hours' / :docs as t) x
 where x.t <= timestamp '2026-11-24 15:00'
   and not (w.shopcode % 25 = 0 and x.t > timestamp '2026-11-24 11:00');
:revenue_index;
-- The sums load-sales keeps as it writes (migration 0007), made once for these documents.
select revenue_hour_rebuild();
-- A day of load log: every register every 10 minutes.
insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host, disposition,
                      last_sale_at, started_at, finished_at, disposed_at)
select c || '-' || m || '.json', 4096, md5(c || '-' || m), (c - 1) % 500 + 1, c, 'pos-' || c, 'processed',
       t at time zone '+03', t, t, t
  from generate_series(1, 1000) c, generate_series(0, 143) m,
       lateral (select timestamptz '2026-11-24 15:00+03' - m * interval '10 minutes' as t) x;
SQL
}
bench_begin "$DB"
bench_data "500 shops, $DOCS_PER_SHIFT documents a shift over 5 weeks" fill
docs=$(psql "$SERVER/$DB" -Atc "select count(*) from document")
bench_job_dirs

# The baseline: per shop, today up to 15:00, and up to 15:00 and whole-day on each of the
# four Tuesdays before.
cat > "$work/baseline.sql" <<'SQL'
select w.shopcode,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-24' and d.time_end <= '2026-11-24 15:00'), 0) as today,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-17' and d.time_end <= '2026-11-17 15:00'), 0) as w1,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-10' and d.time_end <= '2026-11-10 15:00'), 0) as w2,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-03' and d.time_end <= '2026-11-03 15:00'), 0) as w3,
       coalesce(sum(v) filter (where d.time_end >= '2026-10-27' and d.time_end <= '2026-10-27 15:00'), 0) as w4,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-17' and d.time_end < '2026-11-18'), 0) as day1,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-10' and d.time_end < '2026-11-11'), 0) as day2,
       coalesce(sum(v) filter (where d.time_end >= '2026-11-03' and d.time_end < '2026-11-04'), 0) as day3,
       coalesce(sum(v) filter (where d.time_end >= '2026-10-27' and d.time_end < '2026-10-28'), 0) as day4
  from document d
  join workshift w on w.workshiftid = d.workshiftid
  cross join lateral (select case d.doctype when 'sale' then d.total else -d.total end as v) x
 where d.doctype in ('sale', 'return')
   and (   (d.time_end >= '2026-11-24' and d.time_end < '2026-11-25')
        or (d.time_end >= '2026-11-17' and d.time_end < '2026-11-18')
        or (d.time_end >= '2026-11-10' and d.time_end < '2026-11-11')
        or (d.time_end >= '2026-11-03' and d.time_end < '2026-11-04')
        or (d.time_end >= '2026-10-27' and d.time_end < '2026-10-28'))
 group by w.shopcode
 order by w.shopcode;
SQL
bench_nojit "$work/baseline.sql"

# Warm-up, and the same figures on both sides: today and the profile (the median of the
# days with revenue, up to 15:00) of every shop.
"${BENCH_PSQL[@]}" -F, -f "$work/baseline.sql" > "$work/sql.out"
"$CSJOBS" -q --now "$NOW" revenue-watch --dry-run --format json > "$work/watch.out" || true
python3 - "$work/sql.out" "$work/watch.out" <<'PY'
import json, statistics, sys
from decimal import Decimal
rows = [l.split(",") for l in open(sys.argv[1]).read().splitlines()[1:] if "," in l]
sql = {}
for r in rows:
    shop, today, *v = r
    upto, whole = [Decimal(x) for x in v[:4]], [Decimal(x) for x in v[4:]]
    days = [u for u, w in zip(upto, whole) if w != 0]
    sql[int(shop)] = (Decimal(today), statistics.median(days).quantize(Decimal("0.01")) if len(days) >= 2 else None)
text = open(sys.argv[2]).read()
doc = json.loads(text[: text.index("\n--- ")] if "\n--- " in text else text.split("\nnothing to send")[0])
job = {s["shop"]: (Decimal(s["today"]), Decimal(s["profile"]) if s["profile"] else None) for s in doc["shops"]}
if sql != job:
    diff = [(k, sql.get(k), job.get(k)) for k in sorted(set(sql) | set(job)) if sql.get(k) != job.get(k)]
    sys.exit(f"MISMATCH between the SQL and revenue-watch: {diff[:5]}")
low = sum(1 for s in doc["shops"] if s["verdict"] == "low")
print(f"   the SQL and revenue-watch agree on {len(job)} shops; {low} with low revenue", file=sys.stderr)
PY
"$CSJOBS" -q --now "$NOW" report --output "$work/report.html" || true
echo "   the report shows $(grep -o '<article class="shop' "$work/report.html" | wc -l) shops, $(wc -c < "$work/report.html") bytes" >&2

SQL_OPTS=(-F,)
JOB_A=("$CSJOBS" -q --now "$NOW" revenue-watch --dry-run --format json)
JOB_B=("$CSJOBS" -q --now "$NOW" report --output "$work/report.html")
bench_sql_beside_jobs 38 "csjobs revenue-watch and report beside one hand-written SQL query of the revenue" \
    "500 shops, 1,000 registers, $docs documents over 5 weeks; now $NOW" \
    "the revenue query" "csjobs revenue-watch --dry-run" "csjobs report"
echo "targets: <= 1.5 x the faster SQL, under 5 s, peak RSS < 200 MB"

# The period view: `report --from --to` of 31 days for every shop, beside one hand-written
# SQL of the same per-day sums (per shop, register and day: checks and revenue over the 31
# days and the four weeks before them that the first days' profiles need; today up to now).
FROM=2026-10-25 TO=2026-11-24
cat > "$work/period.sql" <<'SQL'
select shopcode, cashcode, day, sum(checks) as checks, sum(amount) as revenue from (
    select w.shopcode, w.cashcode, r.day, r.checks, r.amount
      from revenue_hour r join workshift w using (workshiftid)
     where r.day between date '2026-09-27' and date '2026-11-23'
        or (r.day = date '2026-11-24' and r.hour < 15)
    union all
    select w.shopcode, w.cashcode, date '2026-11-24', 1, case d.doctype when 'sale' then d.total else -d.total end
      from document d join workshift w using (workshiftid)
     where d.doctype in ('sale', 'return') and d.time_end between '2026-11-24 15:00' and '2026-11-24 15:00'
) x group by 1, 2, 3 order by 1, 2, 3;
SQL
bench_nojit "$work/period.sql"
"${BENCH_PSQL[@]}" -F, -f "$work/period.sql" > "$work/period-sql.out"
"$CSJOBS" -q --now "$NOW" report --output "$work/period.html" --from "$FROM" --to "$TO"
python3 - "$work/period-sql.out" "$work/period.html" "$FROM" <<'PY'
import re, sys
from collections import defaultdict
from decimal import Decimal
sql = defaultdict(lambda: [0, Decimal(0)])
for l in open(sys.argv[1]).read().splitlines()[1:]:
    p = l.split(",")
    if len(p) == 5 and p[2] >= sys.argv[3]:
        sql[(int(p[0]), int(p[1]), p[2])] = [int(p[3]), Decimal(p[4])]
page = defaultdict(lambda: [0, Decimal(0)])
shop = date = None
for m in re.finditer(r'<article[^>]* id="shop-(\d+)"|<tr data-date="([\d-]+)"|data-cash="(\d+)" data-checks="(\d+)" data-revenue="([-\d.]+)"', open(sys.argv[2]).read()):
    if m.group(1): shop = int(m.group(1))
    elif m.group(2): date = m.group(2)
    else:
        c, n, r = int(m.group(3)), int(m.group(4)), Decimal(m.group(5))
        if n or r: page[(shop, c, date)] = [n, r]
sql = {k: v for k, v in sql.items() if v[0] or v[1]}
if dict(page) != sql:
    diff = [(k, sql.get(k), page.get(k)) for k in sorted(set(sql) | set(page)) if sql.get(k) != page.get(k)]
    sys.exit(f"MISMATCH between the SQL and the period page: {len(diff)} cells, e.g. {diff[:3]}")
beyond = open(sys.argv[2]).read().count('class="day beyond"')
print(f"   the SQL and the period page agree on {len(sql)} register-days; {beyond} shop-days beyond the threshold", file=sys.stderr)
PY
SQL_OPTS=(-F,)
BASELINE=$work/period.sql
JOB_A=("$CSJOBS" -q --now "$NOW" report --output "$work/period.html" --from "$FROM" --to "$TO")
JOB_B=()
bench_sql_beside_jobs 38 "csjobs report --from $FROM --to $TO beside one hand-written SQL of the same per-day sums" \
    "31 days, every shop: per shop, register and day; the page $(wc -c < "$work/period.html") bytes" \
    "the per-day sums" "csjobs report --from --to"
echo "targets: <= 1.5 x the faster SQL, under 5 s"

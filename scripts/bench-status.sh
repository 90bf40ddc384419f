#!/usr/bin/env bash
# Benchmark of `csjobs status` on a chain-size cash server, beside a baseline measured in the
# same run on the same database: one hand-written SQL query returning the register table's
# columns (last contact, the last sender's ip, last sale, files / errors / broken and distinct
# senders in the window, whether an error was made good), run by psql as a whole process
# (connect, query, output), written independently of the job's query (correlated subqueries
# instead of laterals, count(distinct) instead of array_agg). Status' figures of today
# (checks_today, revenue_today) are checked against a second query that counts them from the
# documents, timed beside (status reads the sums load-sales keeps, revenue_hour, and only
# now's hour from the documents). The baseline runs twice: with
# the server's defaults, and with JIT off as status runs it (JIT costs this query about half
# a second); the ratio is to the faster of the two.
#
#   scripts/bench-status.sh                 # 10,000 registers, 5,000,000 load log rows
#   REGISTERS=2000 ROWS=1000000 REPEAT=5 scripts/bench-status.sh
#   KEEP=1 scripts/bench-status.sh          # keep the database; a second run reuses it
#
# Data, made by SQL on the server: 500 shops (most with working hours, some past midnight,
# some around the clock), REGISTERS registers, ROWS load_log rows spread over 30 days (one in
# 1,000 an error, one in 2,000 broken, some made good; one register in 500 with a second
# sender in the last day), 86,400 job runs, error messages, staged rows, today's sales (one
# shift per register, ten checks an hour up to now, their revenue_hour sums); FILES files in the
# queue. Then VACUUM ANALYZE.
# Targets (issue "Monitoring I"): status <= 1.5 x the SQL and under 2 s; peak RSS < 100 MB.
# The server: CSJOBS_BENCH_DATABASE_URL, else the local one on 127.0.0.1:5432, else a
# throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

REPEAT=${REPEAT:-3}
REGISTERS=${REGISTERS:-10000}
ROWS=${ROWS:-5000000}
FILES=${FILES:-2000}
DB=csjobs_bench_status

fill() {
psql "$SERVER/$DB" -q -v ON_ERROR_STOP=1 -v registers="$REGISTERS" -v rows="$ROWS" >/dev/null <<'SQL'
set synchronous_commit = off;
insert into shop (shopcode, name, city, address)
select s, 'Магазин №' || s, 'Город ' || (s % 50), 'ул. Центральная, ' || s from generate_series(1, 500) s;
insert into cash (cashcode, shopcode, name)
select c, (c - 1) % 500 + 1, 'Касса ' || c from generate_series(1, :registers) c;
-- Working hours: 08:00-22:00 every day; every 10th shop 20:00-02:00 (past midnight); every 7th none.
insert into shop_hours (shopcode, weekday, opens, closes)
select s, d, case when s % 10 = 0 then '20:00' else '08:00' end::time,
             case when s % 10 = 0 then '02:00' else '22:00' end::time
from generate_series(1, 500) s, generate_series(1, 7) d where s % 7 <> 0;
-- The load log: rows in time order over 30 days, every register in turn.
insert into load_log (file_name, file_size, file_mtime, content_sha256, shopcode, cashcode, shiftnum,
                      source_host, source_ip, source_software, disposition, reason, documents, items,
                      last_sale_at, started_at, finished_at, disposed_at, moved_to)
select c || '-' || i || '.json', 4096, t, md5(i::text), (c - 1) % 500 + 1, c, i / :registers,
       'pos-' || c, '10.' || (c / 256 % 256) || '.' || (c % 256) || '.1', '4.6.120',
       case when i % 1000 = 7 then 'error' when i % 2000 = 11 then 'broken' else 'processed' end,
       case when i % 1000 = 7 then 'cash unknown' when i % 2000 = 11 then 'broken (rule 6)' end,
       20, 100, (t at time zone 'UTC') - interval '1 minute', t - interval '50 ms', t, t, 'processed'
from (select i, i % :registers + 1 as c,
             now() - interval '30 days' * (1 - i::float8 / :rows) as t
        from generate_series(1, :rows) i) g;
-- Some errors made good by a later file of the same content (a retry).
insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host, source_ip,
                      disposition, started_at, finished_at, disposed_at)
select file_name, file_size, content_sha256, shopcode, cashcode, source_host, source_ip, 'processed',
       finished_at + interval '5 minutes', finished_at + interval '5 minutes', finished_at + interval '5 minutes'
from load_log where disposition = 'error' and load_id % 3 = 0;
-- One register in 500 copied onto a second PC in the last day.
insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host, source_ip,
                      disposition, started_at, finished_at, disposed_at)
select 'dup-' || c || '.json', 4096, md5('dup' || c), (c - 1) % 500 + 1, c, 'copy-of-' || c, '10.99.0.1',
       'processed', now() - interval '3 hours', now() - interval '3 hours', now() - interval '3 hours'
from generate_series(500, :registers, 500) c;
-- A load-sales run every 30 s for 30 days, the other jobs now and then.
insert into job_run (job, host, pid, started_at, finished_at, outcome, exit_code, counters)
select 'load-sales', 'cs1', 1000 + i % 30000, now() - interval '30 seconds' * i,
       now() - interval '30 seconds' * i + interval '2 seconds', 'done', 0, '{"processed": 12}'
from generate_series(1, 86400) i;
insert into job_run (job, host, pid, started_at, finished_at, outcome, exit_code)
select j, 'cs1', 1, now() - interval '15 minutes' * i, now() - interval '15 minutes' * i + interval '1 second', 'done', 0
from unnest(array['transfer', 'export-astu', 'trim-db', 'trim-dicts']) j, generate_series(1, 2880) i;
insert into error_message (created_at, job, subject, message)
select now() - interval '1 minute' * i, 'load-sales', i || '.json', 'error: cash unknown' from generate_series(1, 500) i;
insert into changeaccountbalancetemp (accountnumber, amount, created_at)
select 'A' || i, 10, now() - interval '1 second' * i from generate_series(1, 1000) i;
-- Today's sales (checks_today, revenue_today): one shift per register since midnight, ten
-- checks an hour up to now (one in ten a return), and the sums load-sales keeps for them.
insert into workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, loaded_at)
select c, c, (c - 1) % 500 + 1, 1, date_trunc('day', localtimestamp), now() from generate_series(1, :registers) c;
insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
select c, k, case when k % 10 = 0 then 'return' else 'sale' end, t, t, 100 + k % 50
  from generate_series(1, :registers) c,
       generate_series(1, (10 * extract(epoch from localtimestamp - date_trunc('day', localtimestamp)) / 3600)::int) k,
       lateral (select date_trunc('day', localtimestamp) + (k - 0.5) * interval '6 minutes' as t) x
 where x.t <= localtimestamp;
select revenue_hour_rebuild();
SQL
}
bench_begin "$DB"
bench_data "$REGISTERS registers, $ROWS load log rows" fill
bench_job_dirs
python3 - "$work/queue" "$FILES" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"file-{i:05}.json"), "w") as f:
        f.write('{"format": "csjobs-sales/1"}' + " " * 2000)
PY

# The baseline: the register table's columns in one query, as a DBA would write it.
cat > "$work/baseline.sql" <<'SQL'
select s.city, s.address, c.shopcode, c.cashcode, c.name,
       (select max(l.finished_at) from load_log l where l.cashcode = c.cashcode) as last_contact,
       (select l.source_ip from load_log l where l.cashcode = c.cashcode
         order by l.finished_at desc limit 1) as ip,
       (select max(l.last_sale_at) from load_log l
         where l.cashcode = c.cashcode and l.disposition = 'processed') as last_sale,
       coalesce(w.files, 0) as files, coalesce(w.errors, 0) as errors, coalesce(w.broken, 0) as broken,
       coalesce(w.senders, 0) as senders, coalesce(w.unresolved, false) as unresolved
from cash c
join shop s on s.shopcode = c.shopcode
left join (
    select l.cashcode,
           count(*) filter (where l.disposition = 'processed') as files,
           count(*) filter (where l.disposition = 'error') as errors,
           count(*) filter (where l.disposition = 'broken') as broken,
           count(distinct coalesce(nullif(l.source_host, ''), l.source_ip)) as senders,
           bool_or(l.disposition <> 'processed' and not exists (
               select 1 from load_log g
                where g.cashcode = l.cashcode and g.finished_at > l.finished_at
                  and g.content_sha256 = l.content_sha256 and g.disposition = 'processed')) as unresolved
      from load_log l
     where l.finished_at >= now() - interval '1 day'
     group by l.cashcode) w on w.cashcode = c.cashcode
order by s.city, s.address, c.cashcode;
SQL
# Today's checks and revenue per register, as a DBA would count them: from the documents.
cat > "$work/today.sql" <<'SQL'
select w.cashcode, count(*) as checks, sum(case d.doctype when 'sale' then d.total else -d.total end) as revenue
  from document d join workshift w using (workshiftid)
 where d.doctype in ('sale', 'return') and d.time_end >= current_date and d.time_end <= localtimestamp
 group by 1;
SQL
bench_nojit "$work/baseline.sql"

# Warm-up, and the same registers on both sides.
"${BENCH_PSQL[@]}" -f "$work/baseline.sql" > "$work/sql.out"
sql_regs=$(($(wc -l < "$work/sql.out") - 2))
"$CSJOBS" -q status --format json > "$work/status.json" || true
job_regs=$(python3 -c "import json; print(len(json.load(open('$work/status.json'))['registers']))")
if [ "$sql_regs" != "$job_regs" ]; then echo "MISMATCH: SQL $sql_regs registers, status $job_regs" >&2; exit 1; fi
sql_dup=$(awk -F'|' 'NR > 1 && $12 >= 2' "$work/sql.out" | wc -l)
job_dup=$(python3 -c "import json; print(sum(1 for r in json.load(open('$work/status.json'))['registers'] if r['state'] == 'duplicate'))")
if [ "$sql_dup" != "$job_dup" ]; then echo "MISMATCH: SQL $sql_dup registers with 2+ senders, status $job_dup duplicate" >&2; exit 1; fi
"${BENCH_PSQL[@]}" -F, -f "$work/today.sql" > "$work/today.out"
python3 - "$work/today.out" "$work/status.json" <<'PY'
import json, sys
from decimal import Decimal
sql = {}
for l in open(sys.argv[1]).read().splitlines()[1:]:
    p = l.split(",")
    if len(p) == 3:
        sql[int(p[0])] = (int(p[1]), Decimal(p[2]))
job = {r["cash"]: (r["checks_today"], Decimal(r["revenue_today"])) for r in json.load(open(sys.argv[2]))["registers"] if r["checks_today"]}
if sql != job:
    diff = [(k, sql.get(k), job.get(k)) for k in sorted(set(sql) | set(job)) if sql.get(k) != job.get(k)]
    sys.exit(f"MISMATCH between the documents and status' checks_today/revenue_today: {len(diff)}, e.g. {diff[:3]}")
print(f"   the documents and status agree on today's checks and revenue of {len(job)} registers ({sum(c for c, _ in job.values())} checks)", file=sys.stderr)
PY

SQL_OPTS=()
JOB_A=("$CSJOBS" -q status --format json)
JOB_B=("$CSJOBS" -q status --format prometheus --output "$work/csjobs.prom")
bench_sql_beside_jobs 34 "csjobs status beside one hand-written SQL query of the register table" \
    "$job_regs registers in 500 shops, $(psql "$SERVER/$DB" -Atc 'select count(*) from load_log') load log rows over 30 days, $FILES queued files; $job_dup duplicate senders found by both" \
    "the register table" "csjobs status --format json" "csjobs status --format prometheus"
lines=$(wc -l < "$work/csjobs.prom")
echo "targets: <= 1.5 x the faster SQL, under 2 s, peak RSS < 100 MB; the textfile has $lines lines"
today_t=()
for r in $(seq "$REPEAT"); do read -r t _ < <(secs_and_rss "${BENCH_PSQL[@]}" -f "$work/today.sql"); today_t+=("$t"); done
echo "today's checks and revenue of every register counted from the documents by psql: $(median "${today_t[*]}") s (status has them within the figures above)"

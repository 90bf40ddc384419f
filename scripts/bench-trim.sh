#!/usr/bin/env bash
# Benchmark of `csjobs trim-db`, measured in the same run on the same server:
#  (a) the trim job's time beside a single DELETE ... WHERE of the same shifts (baseline),
#      each on an identical copy of a database with >= 2 million items in old shifts;
#  (b) the worst latency seen by a concurrent writer (pgbench, one document + item per
#      transaction into a recent shift) while the trim runs, from pgbench's per-transaction log.
# Targets (issue "trim-db"): >= half the baseline's deletion rate; no concurrent insert
# waiting more than 200 ms because of the trim.
#   SHIFTS=400 DOCS=1000 ITEMS=5 scripts/bench-trim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

SHIFTS=${SHIFTS:-400}; DOCS=${DOCS:-1000}; ITEMS=${ITEMS:-5}; BATCH=${BATCH:-20}
NOW=2026-11-23T12:00:00+03:00

cargo build --release --locked --quiet --bin csjobs
CSJOBS=$PWD/target/release/csjobs
pg_bench_server
work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-bench-trim.XXXXXX")
trap 'rm -rf "$work"' EXIT

drop() { for db in "$@"; do psql "$ADMIN" -qc "drop database if exists $db with (force)"; done; }
drop csjobs_bench_trim_tpl csjobs_bench_trim_base csjobs_bench_trim_job
psql "$ADMIN" -qc "create database csjobs_bench_trim_tpl"
CSJOBS_CASHSERVER_DATABASE_URL=$SERVER/csjobs_bench_trim_tpl "$CSJOBS" -q migrate --cashserver >/dev/null
echo "generating $SHIFTS old shifts x $DOCS documents x $ITEMS items" >&2
psql "$SERVER/csjobs_bench_trim_tpl" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
\i fixtures/dictionary.sql
insert into workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, time_end, astu_exported_at, loaded_at)
select s, 17, 8, s, timestamp '2026-01-01 08:00' + (s % 120) * interval '1 day',
       timestamp '2026-01-01 20:00' + (s % 120) * interval '1 day', now(), now()
  from generate_series(1, $SHIFTS) s;
-- recent shifts: the concurrent writer's, and kept by the trim
insert into workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, time_end, astu_exported_at, loaded_at)
select 1000000 + s, 18, 8, s, timestamp '2026-11-22 08:00', null, null, now() from generate_series(1, 10) s;
select setval(pg_get_serial_sequence('workshift', 'workshiftid'), 2000000);
insert into document (documentid, workshiftid, docnum, doctype, time_beg, time_end, total)
select (s - 1) * $DOCS + d, s, d, 'sale', timestamp '2026-01-01 09:00', timestamp '2026-01-01 09:01', $ITEMS
  from generate_series(1, $SHIFTS) s, generate_series(1, $DOCS) d;
select setval(pg_get_serial_sequence('document', 'documentid'), $SHIFTS * $DOCS + 1);
insert into goodsitem (documentid, posnum, ware, dept, quantity, price, discount, total)
select documentid, p, 'w', 1, 1, 1, 0, 1 from document, generate_series(1, $ITEMS) p;
insert into payment (documentid, paynum, paytype, amount) select documentid, 1, 'cash', $ITEMS from document;
vacuum analyze;
SQL
items=$(psql "$SERVER/csjobs_bench_trim_tpl" -Atc "select count(*) from goodsitem")
for db in csjobs_bench_trim_base csjobs_bench_trim_job; do
    psql "$ADMIN" -qc "create database $db template csjobs_bench_trim_tpl"
done
psql "$ADMIN" -qc checkpoint

# (a) baseline: one DELETE of the same shifts.
t0=$(date +%s.%N)
psql "$SERVER/csjobs_bench_trim_base" -qc "delete from workshift where coalesce(time_end, time_beg) < timestamp '2026-10-24 12:00' and (time_end is null or astu_exported_at is not null)"
t1=$(date +%s.%N)
base=$(python3 -c "print($t1 - $t0)")

# (b) the job, with a concurrent writer.
cat > "$work/writer.sql" <<'PGB'
\set w random(1000001, 1000010)
\set n random(1, 2000000000)
with d as (insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
           values (:w, :n, 'sale', now(), now(), 1) on conflict do nothing returning documentid)
insert into goodsitem (documentid, posnum, ware, dept, quantity, price, discount, total)
select documentid, 1, 'w', 1, 1, 1, 0, 1 from d;
PGB
dur=$(python3 -c "import math; print(int(math.ceil($base * 4)) + 4)")
(cd "$work" && pgbench -n -c 2 -T "$dur" -f writer.sql -l --log-prefix=writer "$SERVER/csjobs_bench_trim_job" >pgbench.out 2>&1) &
pgb=$!
sleep 1
s0=$(date +%s.%N)
/usr/bin/time -f "%e %M" -o "$work/time" env CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/csjobs_bench_trim_job" \
    "$CSJOBS" -q --now "$NOW" trim-db --keep-days 30 --batch-size "$BATCH" >/dev/null
s1=$(date +%s.%N)
read -r secs kb < "$work/time"
wait "$pgb"
left=$(psql "$SERVER/csjobs_bench_trim_job" -Atc "select count(*) from workshift where workshiftid <= $SHIFTS")
[ "$left" = 0 ] || { echo "trim left $left old shifts" >&2; exit 1; }
drop csjobs_bench_trim_tpl csjobs_bench_trim_base csjobs_bench_trim_job

python3 - "$items" "$base" "$secs" "$kb" "$s0" "$s1" "$work" <<'PY'
import sys, glob
items, base, secs, kb, s0, s1, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
during, before = [], []
for f in glob.glob(f"{work}/writer.[0-9]*"):
    for line in open(f):
        p = line.split()
        if len(p) < 6: continue
        lat_ms = int(p[2]) / 1000.0
        end = int(p[4]) + int(p[5]) / 1e6
        start = end - lat_ms / 1000.0
        (during if s0 <= start <= s1 else before).append(lat_ms)
during.sort(); before.sort()
q = lambda v, x: v[min(len(v) - 1, int(x * len(v)))] if v else float('nan')
print(f"\ntrim-db of {items} items in old shifts beside one DELETE ... WHERE of the same shifts")
print(f"{'':26} {'seconds':>8} {'items/s':>10}")
print(f"{'DELETE ... WHERE':26} {base:>8.2f} {items / base:>10.0f}")
print(f"{'csjobs trim-db':26} {secs:>8.2f} {items / secs:>10.0f}")
print(f"share of the baseline rate: {base / secs:.2f}; peak RSS {kb // 1024} MB")
print(f"concurrent writer during the trim: {len(during)} inserts, p50 {q(during, .5):.1f} ms, p99 {q(during, .99):.1f} ms, max {max(during) if during else float('nan'):.1f} ms")
print(f"concurrent writer outside the trim: {len(before)} inserts, p99 {q(before, .99):.1f} ms, max {max(before) if before else float('nan'):.1f} ms")
print("targets: share >= 0.5; max insert latency during the trim <= 200 ms")
PY

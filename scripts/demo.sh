#!/usr/bin/env bash
# The demo: a real load of the fixtures' sales files into PostgreSQL.
#
# With CSJOBS_CASHSERVER_DATABASE_URL set, that database is used (it is migrated; give it
# an empty one). Without it, a throwaway PostgreSQL is started and removed at the end.
# The fixtures are copied into a temporary queue: fixtures/ itself is never moved.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/pg.sh

cargo build --release --locked --quiet
CSJOBS=$PWD/target/release/csjobs

if [ -z "${CSJOBS_CASHSERVER_DATABASE_URL:-}" ]; then
    pg_start_throwaway
    psql "$PG_URL" -qc 'create database csjobs_demo'
    export CSJOBS_CASHSERVER_DATABASE_URL=${PG_URL%/postgres}/csjobs_demo
fi
DB=$CSJOBS_CASHSERVER_DATABASE_URL

work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-demo.XXXXXX")
export CSJOBS_QUEUE_DIR=$work/queue CSJOBS_PROCESSED_DIR=$work/processed \
       CSJOBS_ERROR_DIR=$work/error CSJOBS_BROKEN_DIR=$work/broken CSJOBS_BACKUP_DIR=$work/backup \
       CSJOBS_ASTU_OUTBOX=$work/astu CSJOBS_LOG_FORMAT=human
mkdir -p "$CSJOBS_QUEUE_DIR" "$CSJOBS_ASTU_OUTBOX"
# The two fragments of shift 412 must arrive in order: a before b.
i=0
for f in fixtures/sales/good/8-17-412-a.json fixtures/sales/good/8-17-412-b.json \
         fixtures/sales/good/8-18-7.json.gz fixtures/sales/good/9-21-100.json \
         fixtures/sales/error/*.json fixtures/sales/broken/*.json; do
    cp "$f" "$CSJOBS_QUEUE_DIR/"
    touch -d "2026-11-23 03:00:0$i" "$CSJOBS_QUEUE_DIR/$(basename "$f")"
    i=$(( (i + 1) % 10 ))
done

echo "== csjobs migrate"
"$CSJOBS" migrate --cashserver
psql "$DB" -q -f fixtures/dictionary.sql

echo; echo "== csjobs load-sales --dry-run"
"$CSJOBS" -q load-sales --dry-run || true

echo; echo "== csjobs load-sales"
set +e
"$CSJOBS" load-sales
code=$?
set -e
echo "exit code: $code (3 = done, some files rejected)"

echo; echo "== where the files went"
(cd "$work" && find . -type f | sort)

echo; echo "== shifts"
psql "$DB" -P pager=off -c "select workshiftid, shopcode, cashcode, shiftnum, time_beg, time_end from workshift order by 1"
echo "== documents of shift 412 of cash 17"
psql "$DB" -P pager=off -c "select d.docnum, d.doctype, d.time_end, d.total,
       (select count(*) from goodsitem g where g.documentid = d.documentid) as items,
       (select string_agg(p.paytype || ' ' || p.amount, ', ') from payment p where p.documentid = d.documentid) as payments
  from document d join workshift w using (workshiftid)
 where w.cashcode = 17 and w.shiftnum = 412 order by d.docnum"
echo "== load log"
psql "$DB" -P pager=off -c "select file_name, disposition, workshiftid, shift_action, left(reason, 70) as reason from load_log order by load_id"

echo; echo "== ASTU: load-sales exported the closed shifts its files closed or changed; export-astu takes the rest"
"$CSJOBS" -q export-astu
(cd "$CSJOBS_ASTU_OUTBOX" && for f in $(find . -name '*.csv' | sort); do echo "-- $f"; cat "$f"; done)

echo; echo "== csjobs reconcile --cash 17 (per shift)"
"$CSJOBS" -q reconcile --cash 17 --format table
echo; echo "== csjobs reconcile --shop 8 --format csv (per day of the documents' close time)"
"$CSJOBS" -q reconcile --shop 8 --format csv
shift412=$(psql "$DB" -Atc "select workshiftid from workshift where cashcode = 17 and shiftnum = 412")
echo; echo "== csjobs reconcile --departments --shift $shift412 --format json"
"$CSJOBS" -q reconcile --departments --shift "$shift412" --format json
"$CSJOBS" -q reconcile --cash 17 --output "$work/reconcile-cash-17.xlsx"
echo "(and an .xlsx: $(stat -c %s "$work/reconcile-cash-17.xlsx") bytes)"

echo; echo "== csjobs archive (the nightly job): processed/, error/, broken/ into dated .tgz"
"$CSJOBS" --now 2026-11-23T02:30:00+03:00 archive
for a in "$CSJOBS_BACKUP_DIR"/*_archive/*.tgz; do echo "-- tar tzvf $a"; tar tzvf "$a"; done

echo; echo "== csjobs load-sales --replay: shifts opened 2026-11-20..2026-11-23 again, from the archive"
"$CSJOBS" load-sales --replay --from 2026-11-20 --to 2026-11-23 || true
echo "(replaying what is already loaded changes nothing; 8-18-7 has no shift open date, so"
echo " rules.md §1 refuses it a second time, as a second load from the queue would: exit 3)"

echo; echo "== csjobs status: links, queues, jobs and every register (exit 3: problems found)"
psql "$DB" -q -f fixtures/status/hours.sql
# Cash 17's identity used on a second PC: the same register number from another machine.
cp fixtures/status/8-17-413-second-pc.json "$CSJOBS_QUEUE_DIR/"
"$CSJOBS" -q load-sales >/dev/null || true
"$CSJOBS" -q status --format table || true
echo; echo "== csjobs status --format prometheus (the node_exporter textfile), a few lines"
"$CSJOBS" -q status --output "$work/csjobs.prom" || true
grep -E '^csjobs_(up|files|register_state\{shop="8",cash="17"|register_senders|status_healthy)' "$work/csjobs.prom"
echo "($(wc -l < "$work/csjobs.prom") lines in all)"
echo; echo "== csjobs status --format csv (the register checklist; also xlsx and html)"
"$CSJOBS" -q status --format csv || true

echo; echo "== csjobs revenue-watch --dry-run: each shop's revenue today against its usual day"
"$CSJOBS" -q revenue-watch --dry-run --format table || true
echo; echo "== csjobs report: the whole picture as one HTML page"
mkdir -p target
"$CSJOBS" -q report --output target/demo-report.html || true
echo "(written: target/demo-report.html, $(stat -c %s target/demo-report.html) bytes; open it in a browser)"

rm -rf "$work"
if [ "$code" = 3 ]; then exit 0; fi
exit "$code"

#!/usr/bin/env bash
# The demo: a real load of the fixtures' sales files into PostgreSQL, then the monitoring
# (status, revenue-watch, report) at one moment of the fixtures' days.
#
# With CSJOBS_CASHSERVER_DATABASE_URL set, that database is used (it is migrated; give it
# an empty one). Without it, a throwaway PostgreSQL is started and removed at the end.
# The fixtures are copied into a temporary queue: fixtures/ itself is never moved.
# The report page is left in target/demo-report.html (and, when chromium is installed, a
# screenshot of it in target/demo-report.png).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/pg.sh

# The moment the monitoring looks at: Monday 2026-11-23, 21:35 in the shops' zone, inside
# the days of fixtures/history.py (five Mondays of sales).
NOW=2026-11-23T21:35:00+03:00

command -v python3 >/dev/null 2>&1 || apt_install python3 # fixtures/history.py
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
    # Sent on Saturday, 2026-11-21 (their mtime is when they arrived; order: as listed).
    touch -d "2026-11-21 12:00:0$i +03:00" "$CSJOBS_QUEUE_DIR/$(basename "$f")"
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

echo; echo "== five Mondays of sales for the monitoring: fixtures/history.py, loaded by load-sales"
# Four whole Mondays before 2026-11-23 (the profile: the median of the same weekdays) and
# 2026-11-23 itself until 21:30, a file every half hour per register; cash 18's link went
# down at noon. And cash 17's identity used on a second PC that morning.
python3 fixtures/history.py "$CSJOBS_QUEUE_DIR"
cp fixtures/status/8-17-413-second-pc.json "$CSJOBS_QUEUE_DIR/"
touch -d "2026-11-23 09:11:00 +03:00" "$CSJOBS_QUEUE_DIR/8-17-413-second-pc.json"
psql "$DB" -q -f fixtures/status/hours.sql
"$CSJOBS" -q load-sales
# Five weeks of files arrived in one run just now. The monitoring judges a register by when
# its files arrived (load_log.finished_at): each file's row takes the time its register sent
# it (its mtime, kept in load_log.file_mtime), as if load-sales had run all along.
psql "$DB" -qc "update load_log set started_at = file_mtime, finished_at = file_mtime, disposed_at = file_mtime
                 where file_mtime is not null and strpos(file_name, '/') = 0"

echo; echo "== csjobs --now $NOW status: links, queues, jobs and every register (exit 3: problems found)"
"$CSJOBS" -q --now "$NOW" status --format table || true
echo "(the jobs' runs and error messages are the demo's own, made just now; the registers are seen at $NOW)"
echo; echo "== csjobs status --format prometheus (the node_exporter textfile), a few lines"
"$CSJOBS" -q --now "$NOW" status --output "$work/csjobs.prom" || true
grep -E '^csjobs_(up|files|register_state\{shop="8",cash="1[78]"|register_senders|status_healthy)' "$work/csjobs.prom"
echo "($(wc -l < "$work/csjobs.prom") lines in all)"
echo; echo "== csjobs status --format csv (the register checklist; also xlsx and html)"
"$CSJOBS" -q --now "$NOW" status --format csv || true

echo; echo "== csjobs --now $NOW revenue-watch --dry-run: each shop's revenue today against its usual Monday"
"$CSJOBS" -q --now "$NOW" revenue-watch --dry-run --format table || true
echo; echo "== csjobs --now $NOW revenue-watch: the alerts recorded and sent, here to a webhook on 127.0.0.1"
# A receiver of one POST (what an Alertmanager webhook receiver would get), for the demo only.
timeout 60 python3 - "$work/webhook" <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open(sys.argv[1] + ".json", "wb").write(body)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
open(sys.argv[1] + ".port", "w").write(str(server.server_port))
server.handle_request()
PY
hook=$!
for _ in $(seq 50); do [ -s "$work/webhook.port" ] && break; sleep 0.1; done
set +e
CSJOBS_ALERTS_WEBHOOK_URL="http://127.0.0.1:$(cat "$work/webhook.port")/csjobs" "$CSJOBS" -q --now "$NOW" revenue-watch --format table
echo "exit code: $? (3 = alerts open)"
set -e
[ -s "$work/webhook.json" ] || kill "$hook" 2>/dev/null || true
wait "$hook" 2>/dev/null || true
if [ -s "$work/webhook.json" ]; then
    python3 - "$work/webhook.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
print(f"the webhook received: status {doc['status']}, {len(doc['alerts'])} alerts")
for a in doc["alerts"]:
    print(f"  {a['labels']['alertname']:<16} shop {a['labels']['shop']:<3} cash {a['labels'].get('cash') or '-':<4} {a['annotations']['summary']}")
PY
fi
echo; echo "== csjobs --now $NOW report: the whole picture as one HTML page"
mkdir -p target
page=$PWD/target/demo-report.html
"$CSJOBS" -q --now "$NOW" report --output "$page" || true
echo "written: $page ($(stat -c %s "$page") bytes); open it in a browser: file://$page"
if command -v chromium >/dev/null 2>&1; then
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
        --user-data-dir="$work/chromium" --window-size=1440,1640 --screenshot="${page%.html}.png" \
        "file://$page" >/dev/null 2>&1 && echo "and its screenshot: ${page%.html}.png"
fi

rm -rf "$work"
if [ "$code" = 3 ]; then exit 0; fi
exit "$code"

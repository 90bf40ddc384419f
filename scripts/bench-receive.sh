#!/usr/bin/env bash
# Benchmark of `csjobs receive` beside its baseline, measured in the same run on the same
# broker: a pika consumer (Python's python3-pika) that takes the same messages with the same
# prefetch and acknowledges them (one ack with multiple per batch handed over, as receive
# does), writing nothing: the broker's own delivery rate. Then `csjobs load-sales` of the
# queue directory receive filled, into a scratch database: the whole path register → broker
# → database.
#
#   scripts/bench-receive.sh
#   MESSAGES=5000 PREFETCH=100 ROUNDS=1 scripts/bench-receive.sh
#
# Messages: one-check sales files (5 items, about 1 KB) from scripts/gen_sales.rs (profile
# small, never committed), published plain and persistent to receive.exchange of a vhost of
# the benchmark's own (removed afterwards) with the register agent's headers, once for the
# baseline and once for receive, into the same durable quorum queue receive declares.
# Times are whole processes (/usr/bin/time: wall clock and peak RSS), start-up included;
# ROUNDS rounds (3), each the baseline then receive, the median of each and the highest RSS.
# Every file receive wrote must be one of the files published, byte for byte, and load-sales
# must load every document.
# BENCH_DIR: where the work directory (sales, queue directory) goes [default: a fresh
# loop-mounted ext4 in target/ when target/ has no journal, else target/; see below].
# Targets (issue 22): receive >= 5,000 messages/s, >= 0.5 x the baseline's rate, peak RSS
# < 100 MB.
# The broker: the local RabbitMQ (scripts/lib/rabbitmq.sh starts it); the database server:
# CSJOBS_BENCH_DATABASE_URL, else the local one on 127.0.0.1:5432, else a throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/pg.sh
. scripts/lib/rabbitmq.sh

export PGOPTIONS="-c client_min_messages=warning"
MESSAGES=${MESSAGES:-20000}
PREFETCH=${PREFETCH:-500}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
HELPER=$PWD/scripts/lib/amqp_bench.py

cargo build --release --locked --quiet --bin csjobs --example gen_sales
# CSJOBS_BIN: another build of csjobs to measure beside the same-run baseline.
CSJOBS=${CSJOBS_BIN:-$PWD/target/release/csjobs}
GEN=$PWD/target/release/examples/gen_sales

rabbitmq_ensure
$PY -c 'import pika' 2>/dev/null || apt_install python3-pika
pg_bench_server
work= mnt= image=
vhost=csjobs_bench_receive_$$
DB=csjobs_bench_receive
cleanup() {
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
    psql "$ADMIN" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    [ -z "$work" ] || rm -rf "$work"
    if [ -n "$mnt" ]; then
        umount "$mnt" 2>/dev/null || true
        rm -f "$image"
        rmdir "$mnt" 2>/dev/null || true
    fi
    pg_stop_throwaway 2>/dev/null || true
}
trap cleanup EXIT
# Where the work directory (sales, queue directory) goes: BENCH_DIR when given. Else, when
# target/ is on an ext4 without a journal (this machine's) and this run may mount one (root,
# a loop device), a fresh ext4 made as Debian's mkfs.ext4 makes it (with a journal), in an
# image file under target/, loop-mounted for the run; else target/. Why: without a journal
# ext4's inode allocator skips every free inode deleted in the last 60 s (360 s while its
# table block is dirty), scanning its block group from the start for each new file (perf:
# recently_deleted, find_get_block_common). After the last run's cleanup, or a test run,
# removed 40,000 files, receive took 3 to 7 s instead of 1 s: a measure of that churn, not
# of receive (docs/performance.md). Debian's ext4 has a journal, as a cash server's would.
fs_of() { # a directory: its file system, as this report names it
    local fs dev
    fs=$(stat -f -c %T "$1")
    dev=$(basename "$(df --output=source "$1" | tail -n 1)")
    if [ "$fs" = ext2/ext3 ] && [ -e "/sys/fs/ext4/$dev" ]; then
        if [ "$(cat "/sys/fs/ext4/$dev/journal_task" 2>/dev/null)" = "<none>" ]; then
            fs="ext4 without a journal"
        else
            fs="ext4 with a journal"
        fi
    fi
    echo "$fs"
}
if [ -n "${BENCH_DIR:-}" ]; then
    bench_dir=$BENCH_DIR
else
    bench_dir=$PWD/target
    if [ "$(fs_of "$bench_dir")" = "ext4 without a journal" ]; then
        image=$bench_dir/csjobs-bench-receive.img
        mnt=$bench_dir/csjobs-bench-receive.mnt
        mkdir -p "$mnt"
        rm -f "$image"
        # Room for the sales files and the queue directory's (one 4 KB block and one inode
        # each), allocated up front as a disk's blocks are.
        fallocate -l "$((MESSAGES * 16 / 1000 + 256))M" "$image"
        if mkfs.ext4 -q -F -N "$((MESSAGES * 3 + 4096))" "$image" 2>/dev/null &&
            mount -o loop "$image" "$mnt" 2>/dev/null; then
            bench_dir=$mnt
        else
            echo "   (cannot mount a fresh ext4 here: the work directory stays on target/, an ext4 without a journal, where the figure moves with recent deletions)" >&2
            rm -f "$image"
            image= mnt=
        fi
    fi
fi
fs=$(fs_of "$bench_dir")
[ -z "$mnt" ] || fs="$fs, fresh, loop-mounted"
mkdir -p "$bench_dir"
work=$(mktemp -d "$bench_dir/csjobs-bench-receive.XXXXXX")
rabbitmqctl -q add_vhost "$vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
URL=amqp://guest:guest@127.0.0.1:5672/$vhost
EXCHANGE=csjobs.sales
QUEUE=csjobs.sales

echo "== generating $MESSAGES one-check sales files" >&2
scale=$(python3 -c "print($MESSAGES / 10000)")
"$GEN" --profile small --scale "$scale" --out "$work/sales" --csv "$work/csv" 2>&1 | sed 's/^/   /' >&2
files=$(ls "$work/sales" | wc -l)
bytes=$(find "$work/sales" -type f -printf "%s\n" | awk "{ s += \$1 } END { print s }")
echo "   $files files, $((bytes / files)) bytes each on average" >&2

# The scratch database: receive keeps its run log there, load-sales loads into it.
psql "$ADMIN" -qc "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$DB" "$CSJOBS" -q migrate --cashserver >/dev/null
psql "$SERVER/$DB" -q -f "$work/csv/dictionary.sql" >/dev/null
receive_env=(env CSJOBS_CASHSERVER_DATABASE_URL="$SERVER/$DB" CSJOBS_RECEIVE_AMQP_URL="$URL"
    CSJOBS_RECEIVE_PREFETCH="$PREFETCH" CSJOBS_RECEIVE_IDLE_EXIT=2s CSJOBS_QUEUE_DIR="$work/queue"
    CSJOBS_PROCESSED_DIR="$work/processed" CSJOBS_ERROR_DIR="$work/error" CSJOBS_BROKEN_DIR="$work/broken"
    CSJOBS_ASTU_AUTO_EXPORT=false)
mkdir -p "$work/queue" "$work/processed" "$work/error" "$work/broken"
# The first run declares the exchange and the queues (the queue is empty: it exits at once).
"${receive_env[@]}" "$CSJOBS" -q receive

timed() { # out_file cmd…: "seconds peak_kb" of the whole process
    local out=$1
    shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$out"
    tail -n 1 "$work/time"
}

# ROUNDS rounds, each the baseline then receive of the same messages; the median of each.
base_runs=() recv_runs=() base_peak=0 recv_peak=0
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS: the baseline, pika takes $files messages with prefetch $PREFETCH and writes nothing" >&2
    $PY "$HELPER" publish "$URL" "$EXCHANGE" "$QUEUE" "$work/sales" >/dev/null
    read -r secs kb < <(timed "$work/drained" $PY "$HELPER" drain "$URL" "$QUEUE" "$files" "$PREFETCH")
    [ "$(cat "$work/drained")" = "$files" ] || { echo "the baseline took $(cat "$work/drained") messages" >&2; exit 1; }
    base_runs+=("$secs")
    [ "$kb" -le "$base_peak" ] || base_peak=$kb

    echo "== round $round of $ROUNDS: csjobs receive --limit $files into the queue directory" >&2
    find "$work/queue" -mindepth 1 -delete
    $PY "$HELPER" publish "$URL" "$EXCHANGE" "$QUEUE" "$work/sales" >/dev/null
    sync
    read -r secs kb < <(timed "$work/received" "${receive_env[@]}" "$CSJOBS" -q receive --limit "$files")
    recv_runs+=("$secs")
    [ "$kb" -le "$recv_peak" ] || recv_peak=$kb
    got=$(ls "$work/queue" | wc -l)
    [ "$got" = "$files" ] || { echo "receive wrote $got files of $files" >&2; exit 1; }
    # Byte for byte the files published (receive names them by content).
    diff <(cd "$work/sales" && sha256sum -- * | cut -d' ' -f1 | sort) \
        <(cd "$work/queue" && sha256sum -- * | cut -d' ' -f1 | sort) >/dev/null \
        || { echo "MISMATCH: the received files are not the files published" >&2; exit 1; }
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
base_secs=$(median "${base_runs[@]}")
recv_secs=$(median "${recv_runs[@]}")
base_kb=$base_peak recv_kb=$recv_peak

echo "== csjobs load-sales of that queue into the scratch database" >&2
psql "$SERVER/$DB" -qc "checkpoint" >/dev/null
read -r load_secs load_kb < <(timed /dev/null "${receive_env[@]}" "$CSJOBS" -q load-sales)
docs=$(psql "$SERVER/$DB" -Atc "select count(*) from document")
[ "$docs" = "$files" ] || { echo "load-sales loaded $docs documents of $files" >&2; exit 1; }
run_log=$(psql "$SERVER/$DB" -Atc "select counters->>'received' from job_run where job = 'receive' order by run_id desc limit 1")
[ "$run_log" = "$files" ] || { echo "receive's run log says $run_log received" >&2; exit 1; }

echo
echo "receive beside a pika consumer of the same messages (RabbitMQ $(rabbitmqctl -q version 2>/dev/null || echo '?'), quorum queue, prefetch $PREFETCH, $(nproc) cores, queue directory on $fs)"
python3 - "$files" "$bytes" "$base_secs" "$base_kb" "$recv_secs" "$recv_kb" "$load_secs" "$load_kb" "${base_runs[*]}" "${recv_runs[*]}" <<'PY'
import sys
files, size = int(sys.argv[1]), int(sys.argv[2])
base_s, base_kb, recv_s, recv_kb, load_s, load_kb = map(float, sys.argv[3:9])
base_rate, recv_rate, load_rate = files / base_s, files / recv_s, files / load_s
print(f"{'':22} {'seconds':>8} {'msgs/s':>9} {'RSS MB':>7}")
print(f"{'baseline (pika)':22} {base_s:8.2f} {base_rate:9.0f} {base_kb / 1024:7.0f}")
print(f"{'csjobs receive':22} {recv_s:8.2f} {recv_rate:9.0f} {recv_kb / 1024:7.0f}")
print(f"{'csjobs load-sales':22} {load_s:8.2f} {load_rate:9.0f} {load_kb / 1024:7.0f}   (files/s)")
print(f"rounds (seconds): baseline {sys.argv[9]}; receive {sys.argv[10]}; the median of each above")
print(f"receive / baseline rate: {recv_rate / base_rate:.2f}; {files} messages of {size / files:.0f} bytes on average")
ok = recv_rate >= 5000 and recv_rate >= 0.5 * base_rate and recv_kb / 1024 < 100
print("targets: receive >= 5000 msgs/s, >= 0.5 x the baseline, RSS < 100 MB:", "met" if ok else "NOT MET")
PY

#!/usr/bin/env bash
# Benchmark of `csjobs archive` beside its baseline, `tar czf` (GNU tar piping to gzip at its
# default level 6), measured in the same run on the same files from a warm page cache.
#
#   scripts/bench-archive.sh                 # ~500 MB
#   LARGE_SCALE=2 SMALL_SCALE=1 REPEAT=1 scripts/bench-archive.sh   # a quick look
#
# Data (scripts/gen_sales.rs, never committed): processed/ gets LARGE_SCALE x 50 shift-close
# files of ~1.5 MB and SMALL_SCALE x 10,000 one-check files of ~3 KB; error/ and broken/ get
# a share of small files. The archive job writes, fsyncs, renames, reads back and checks its
# archives and deletes the sources; tar only writes. Both take the best of REPEAT runs on a
# fresh copy of the same tree (copied with cp -a, untimed).
# Targets (issue "archive"): throughput >= 1.8 x tar czf; archives within 5 % of tar's size;
# memory bounded (peak RSS printed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh # now

LARGE_SCALE=${LARGE_SCALE:-6}
SMALL_SCALE=${SMALL_SCALE:-3}
REPEAT=${REPEAT:-2}

cargo build --release --locked --quiet --bin csjobs --example gen_sales
CSJOBS=$PWD/target/release/csjobs
GEN=$PWD/target/release/examples/gen_sales
work=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-bench-archive.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "generating the source tree in $work/src" >&2
"$GEN" --profile large --scale "$LARGE_SCALE" --seed 1 --out "$work/src/processed/large" >/dev/null 2>&1
"$GEN" --profile small --scale "$SMALL_SCALE" --seed 2 --out "$work/src/processed/small" >/dev/null 2>&1
"$GEN" --profile small --scale 0.3 --seed 3 --out "$work/src/error" >/dev/null 2>&1
"$GEN" --profile small --scale 0.1 --seed 4 --out "$work/src/broken" >/dev/null 2>&1
bytes=$(du -sb --apparent-size "$work/src" | cut -f1)
files=$(find "$work/src" -type f | wc -l)
echo "source: $files files, $((bytes / 1000000)) MB" >&2

fresh() { rm -rf "$work/run"; cp -a "$work/src" "$work/run"; mkdir -p "$work/run/backup"; sync; find "$work/run" -type f -exec cat {} + >/dev/null; }

tar_times=() job_times=() rss=()
for r in $(seq "$REPEAT"); do
    fresh
    t0=$(now)
    for d in processed error broken; do
        tar czf "$work/run/backup/$d-baseline.tgz" -C "$work/run/$d" .
    done
    t1=$(now)
    tar_times+=("$(echo "$t1 - $t0" | bc)")
    tar_size=$(cat "$work"/run/backup/*-baseline.tgz | wc -c)

    fresh
    t0=$(now)
    CSJOBS_PROCESSED_DIR=$work/run/processed CSJOBS_ERROR_DIR=$work/run/error \
        CSJOBS_BROKEN_DIR=$work/run/broken CSJOBS_BACKUP_DIR=$work/run/backup \
        /usr/bin/time -f "%M" -o "$work/rss" "$CSJOBS" -q --log-format json archive >/dev/null
    t1=$(now)
    job_times+=("$(echo "$t1 - $t0" | bc)")
    rss+=("$(cat "$work/rss")")
    job_size=$(cat "$work"/run/backup/*_archive/*.tgz | wc -c)
    left=$(find "$work/run/processed" "$work/run/error" "$work/run/broken" -type f | wc -l)
    [ "$left" = 0 ] || { echo "archive left $left source files" >&2; exit 1; }
    # The job's archives must open with GNU tar and hold every file.
    n=$(for a in "$work"/run/backup/*_archive/*.tgz; do tar tzf "$a"; done | grep -vc '/$')
    [ "$n" = "$files" ] || { echo "archives hold $n files, expected $files" >&2; exit 1; }
    echo "run $r: tar czf ${tar_times[-1]} s ($tar_size bytes), csjobs archive ${job_times[-1]} s ($job_size bytes), rss ${rss[-1]} KB" >&2
done

python3 - "$bytes" "$tar_size" "$job_size" "${tar_times[*]}" "${job_times[*]}" "${rss[*]}" <<'PY'
import sys
b, ts, js = (int(x) for x in sys.argv[1:4])
tt = min(float(x) for x in sys.argv[4].split())
jt = min(float(x) for x in sys.argv[5].split())
rss = max(int(x) for x in sys.argv[6].split())
print(f"source            {b/1e6:10.1f} MB")
print(f"tar czf           {tt:10.2f} s  {b/1e6/tt:8.1f} MB/s  archive {ts/1e6:8.1f} MB  (ratio {b/ts:.2f})")
print(f"csjobs archive    {jt:10.2f} s  {b/1e6/jt:8.1f} MB/s  archive {js/1e6:8.1f} MB  (ratio {b/js:.2f})")
print(f"throughput        {tt/jt:10.2f} x tar czf   (target >= 1.8)")
print(f"size vs tar       {100*(js-ts)/ts:+10.2f} %         (target within 5 %)")
print(f"peak RSS          {rss/1024:10.1f} MB")
PY

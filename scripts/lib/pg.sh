# PostgreSQL for the project's scripts (sourced, not run).
#
#   pg_local_url          prints the local server's URL when one answers on 127.0.0.1:5432
#   pg_bench_server       sets ADMIN (a URL to the benchmark's server) and SERVER (it without
#                         the database): CSJOBS_BENCH_DATABASE_URL, else the local server,
#                         else a throwaway cluster (CSJOBS_BENCH_THROWAWAY=1 forces that)
#   pg_start_throwaway    starts a private cluster (initdb + pg_ctl) in a temporary
#                         directory, stopped and removed when the script exits; installs
#                         PostgreSQL with apt-get when initdb is missing; sets PG_URL
#
# Nothing here changes the machine's own PostgreSQL.

. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

pg_log() { echo "[pg] $*" >&2; }

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

pg_install() {
    if pg_bindir >/dev/null; then return 0; fi
    if [ "$(id -u)" != 0 ]; then
        pg_log "PostgreSQL (initdb) is missing and this is not root: install the 'postgresql' package, or set the URL"
        return 1
    fi
    apt_install postgresql postgresql-client
}

pg_local_url() {
    local url="postgres://postgres@127.0.0.1:5432/postgres"
    command -v psql >/dev/null 2>&1 || return 1
    if PGCONNECT_TIMEOUT=3 psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
        echo "$url"
        return 0
    fi
    return 1
}

# Ports below the kernel's ephemeral range: a port inside it can be held by any client
# connection's local end (even one in TIME-WAIT), and then the server cannot bind it.
pg_free_ports() {
    local lo p
    lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for p in $(seq 25432 5 $((lo - 1))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
        if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then continue; fi
        echo "$p"
    done
}

pg_start_throwaway() {
    pg_install || return 1
    local bindir port dir user run
    bindir=$(pg_bindir)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/csjobs-pg.XXXXXX")
    # Cleanup is armed at once, so a failed start leaves nothing behind either.
    PG_THROWAWAY_DIR=$dir
    PG_THROWAWAY_STOP=true
    trap 'pg_stop_throwaway' EXIT
    trap 'pg_stop_throwaway; exit 130' INT TERM
    run=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root: the cluster belongs to an unprivileged user.
        user=postgres
        id "$user" >/dev/null 2>&1 || { user=csjobs-pg; id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"; }
        chown "$user" "$dir"
        run=(runuser -u "$user" --)
    fi
    "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    # A port found free can still be taken before the server binds it: try a few.
    local started=0
    for port in $(pg_free_ports | head -n 5); do
        if "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null; then
            started=1
            break
        fi
        pg_log "port $port was taken; trying another"
    done
    [ "$started" = 1 ] || { cat "$dir/server.log" >&2; return 1; }
    pg_log "started a throwaway PostgreSQL ($bindir) on 127.0.0.1:$port in $dir"
    PG_THROWAWAY_STOP="${run[*]} $bindir/pg_ctl -D $dir/data -m immediate stop"
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PG_URL
}

pg_stop_throwaway() {
    if [ -n "${PG_THROWAWAY_DIR:-}" ]; then
        $PG_THROWAWAY_STOP >/dev/null 2>&1 || true
        rm -rf "$PG_THROWAWAY_DIR"
        PG_THROWAWAY_DIR=
    fi
}

pg_bench_server() {
    if [ -n "${CSJOBS_BENCH_DATABASE_URL:-}" ]; then
        ADMIN=$CSJOBS_BENCH_DATABASE_URL
    elif [ "${CSJOBS_BENCH_THROWAWAY:-0}" != 1 ] && ADMIN=$(pg_local_url); then
        :
    else
        pg_start_throwaway
        ADMIN=$PG_URL
    fi
    SERVER=${ADMIN%/*}
}

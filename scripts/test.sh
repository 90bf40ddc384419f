#!/usr/bin/env bash
# The whole test suite against a real PostgreSQL. The server, in this order:
#   1. CSJOBS_TEST_DATABASE_URL when set (any database; tests create and drop their own);
#   2. the local server on 127.0.0.1:5432 (user postgres, trust) if it answers;
#   3. a throwaway cluster started with initdb/pg_ctl (PostgreSQL installed with apt-get
#      when missing), removed afterwards. CSJOBS_TEST_THROWAWAY=1 skips step 2, to try what
#      a fresh machine does.
# The status tests also drive promtool, prometheus-node-exporter, python3 and a standby made
# with the distribution's initdb/pg_basebackup: what is missing is installed with apt-get.
# The receive tests need RabbitMQ on 127.0.0.1:5672: started (installed) when it does not
# answer (scripts/lib/rabbitmq.sh).
# Extra arguments go to `cargo test` (e.g. scripts/test.sh --test crash).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/pg.sh
. scripts/lib/tools.sh
. scripts/lib/rabbitmq.sh

# Without them the tests that need them fail, saying which program is missing.
tools_ensure || echo "[test] some tools are missing: the status tests that need them will fail" >&2
# The standby test builds its clusters with the server binaries even when a server answers.
pg_install || echo "[test] PostgreSQL server binaries are missing: the standby test will fail" >&2
rabbitmq_ensure || echo "[test] RabbitMQ does not answer on 127.0.0.1:5672: the receive tests will fail" >&2

if [ -z "${CSJOBS_TEST_DATABASE_URL:-}" ]; then
    if [ "${CSJOBS_TEST_THROWAWAY:-0}" != 1 ] && url=$(pg_local_url); then
        echo "[test] using the local PostgreSQL at 127.0.0.1:5432" >&2
        CSJOBS_TEST_DATABASE_URL=$url
    else
        pg_start_throwaway
        CSJOBS_TEST_DATABASE_URL=$PG_URL
    fi
fi
export CSJOBS_TEST_DATABASE_URL

# Two cores: a few test threads keep both busy without the tests fighting over the server.
cargo test --locked "$@" -- --test-threads="${CSJOBS_TEST_THREADS:-4}"

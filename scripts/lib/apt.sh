# Debian packages for the project's scripts (sourced, not run).
#
#   apt_install PKG…   installs the packages with apt-get (root only; a package list is
#                      fetched once per script), without starting their services: a
#                      policy-rc.d answering 101 is in place for the install (node_exporter
#                      would take port 9100, PostgreSQL's cluster a port of its own).

APT_UPDATED=${APT_UPDATED:-0}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "[apt] missing: $*; install these Debian packages (needs root)" >&2
        return 1
    fi
    echo "[apt] installing with apt-get: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" != 1 ]; then
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    local policy=/usr/sbin/policy-rc.d created=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
    [ "$created" = 1 ] && rm -f "$policy"
    return $rc
}

# The real programs the tests drive besides PostgreSQL (sourced, not run).
#
#   tools_ensure    installs with apt-get what is missing: promtool (package prometheus) and
#                   prometheus-node-exporter for the status textfile, python3 for parsing pages,
#                   lintian, systemd-analyze (systemd) and man (man-db) for the package test,
#                   chromium (headless) for the report page, and python3-aiosmtpd (an SMTP
#                   server for Debian's /usr/bin/python3) for the alert e-mails.
#
# Nothing is started or enabled: the packages' services are not needed (and on a machine
# without systemd they are not started at all).

tools_log() { echo "[tools] $*" >&2; }

tools_ensure() {
    local missing=() cmd pkg
    for pair in promtool:prometheus prometheus-node-exporter:prometheus-node-exporter python3:python3 \
        lintian:lintian systemd-analyze:systemd man:man-db dpkg-deb:dpkg strip:binutils; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        tools_log "missing: ${missing[*]}; install these Debian packages (needs root)"
        return 1
    fi
    tools_log "installing with apt-get: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # policy-rc.d 101: a package's service is not started on install (node_exporter would
    # otherwise take port 9100 on a machine with an init system).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    local rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
    [ "$created" = 1 ] && rm -f "$policy"
    return $rc
}

# The real programs the tests drive besides PostgreSQL (sourced, not run).
#
#   tools_ensure    installs with apt-get what is missing: promtool (package prometheus) and
#                   prometheus-node-exporter for the status textfile, python3 for parsing pages,
#                   lintian, systemd-analyze (systemd) and man (man-db) for the package test,
#                   chromium (headless) for the report page, python3-aiosmtpd (an SMTP
#                   server for Debian's /usr/bin/python3) for the alert e-mails,
#                   python3-pika (an AMQP client) for publishing to receive, and
#                   python3-yaml for reading the alerting rules and their promtool tests.
#
# Nothing is started or enabled: the packages' services are not needed (apt_install keeps
# them stopped).

. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

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
    /usr/bin/python3 -c 'import pika' >/dev/null 2>&1 || missing+=(python3-pika)
    /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_install "${missing[@]}"
}

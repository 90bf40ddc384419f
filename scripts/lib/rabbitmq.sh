# RabbitMQ for the receive tests (sourced, not run).
#
#   rabbitmq_ensure   makes the local broker answer (127.0.0.1:5672, guest/guest, which
#                     RabbitMQ allows from localhost): nothing when it already does;
#                     rabbitmq-server installed with apt-get when missing (its service is not
#                     started by the install, see apt.sh), then started with
#                     `rabbitmq-server -detached` and waited for. The broker is left running,
#                     as the machine's PostgreSQL is; the tests make and remove their own vhosts.
#                     Its shovel plugin (part of rabbitmq-server) is enabled when it is not:
#                     the chain test (tests/receive_chain.rs) sets shovels up on it.

. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

rabbitmq_log() { echo "[rabbitmq] $*" >&2; }

rabbitmq_answers() {
    timeout 60 rabbitmqctl -q status >/dev/null 2>&1
}

# The shovel plugin on (idempotent): rabbitmqctl knows shovel_status only when it is.
rabbitmq_shovel_ensure() {
    if timeout 60 rabbitmqctl -q shovel_status >/dev/null 2>&1; then
        return 0
    fi
    rabbitmq_log "enabling the shovel plugin (rabbitmq-plugins enable rabbitmq_shovel)"
    timeout 120 rabbitmq-plugins -q enable rabbitmq_shovel >&2
}

rabbitmq_ensure() {
    if ! command -v rabbitmqctl >/dev/null 2>&1; then
        apt_install rabbitmq-server || return 1
    fi
    if rabbitmq_answers; then
        rabbitmq_shovel_ensure
        return
    fi
    rabbitmq_log "the broker does not answer: starting rabbitmq-server"
    rabbitmq-server -detached >&2 || return 1
    # await_startup waits for the node to boot once it runs; the loop covers the moment
    # before the node exists at all.
    local i
    for i in $(seq 1 60); do
        if timeout 120 rabbitmqctl -q await_startup >/dev/null 2>&1 && rabbitmq_answers; then
            rabbitmq_log "rabbitmq-server is up"
            rabbitmq_shovel_ensure
            return
        fi
        sleep 2
    done
    rabbitmq_log "rabbitmq-server did not come up; see /var/log/rabbitmq/"
    return 1
}

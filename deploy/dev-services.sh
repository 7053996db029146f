#!/usr/bin/env bash
# Makes sure the services the tests and a multi-node deployment need are
# running on this machine: PostgreSQL on 127.0.0.1:5432 (trust auth, user
# postgres) and RabbitMQ on 127.0.0.1:5672 (guest/guest). Starts them if
# they are installed but stopped; installs them from Debian if missing.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port=$1 name=$2
    for _ in $(seq 1 60); do
        port_open "$port" && return 0
        sleep 1
    done
    echo "$name did not come up on port $port" >&2
    return 1
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        $SUDO apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if ! port_open 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port 5432 PostgreSQL
fi
echo "PostgreSQL is up on 127.0.0.1:5432"

if ! port_open 5672; then
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        apt_install rabbitmq-server
    fi
    $SUDO rabbitmq-server -detached || true
    wait_port 5672 RabbitMQ
fi
echo "RabbitMQ is up on 127.0.0.1:5672"

# crates/bus/tests/cluster.rs and tls.rs start RabbitMQ nodes of their own
# (other names and ports; the broker above is left alone) from the
# installed binaries, and make certificates with the openssl CLI.
command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
command -v openssl >/dev/null 2>&1 || apt_install openssl

#!/usr/bin/env bash
# Sets up a machine for Tollgate: Node dependencies, Java (for DynamoDB Local), RabbitMQ (installed and started),
# amqp-tools and curl (independent clients used by interop tests), spin + gcc (the protocol model check),
# chromium (the console's browser tests).
# Safe to run again: every step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

command -v java >/dev/null 2>&1 || { echo "== installing java"; apt_install default-jre-headless; }
command -v rabbitmq-server >/dev/null 2>&1 || { echo "== installing rabbitmq-server"; apt_install rabbitmq-server; }
command -v amqp-publish >/dev/null 2>&1 || { echo "== installing amqp-tools"; apt_install amqp-tools; }
command -v curl >/dev/null 2>&1 || { echo "== installing curl"; apt_install curl; }
command -v spin >/dev/null 2>&1 || { echo "== installing spin (model checker)"; apt_install spin; }
command -v gcc >/dev/null 2>&1 || { echo "== installing gcc (to compile spin verifiers)"; apt_install gcc; }
# The console's browser tests drive Debian's Chromium with playwright-core, which downloads no browser.
[ -x /usr/bin/chromium ] || { echo "== installing chromium (console browser tests)"; apt_install chromium; }

if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
  echo "== starting rabbitmq"
  as_root rabbitmq-server -detached
fi
# Wait until the broker accepts AMQP clients, not just until the Erlang node is up.
for _ in $(seq 1 60); do
  if as_root rabbitmqctl -q await_startup >/dev/null 2>&1 && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    break
  fi
  sleep 2
done
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || { echo "RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }

# PostgreSQL for the PostgreSQL store's tests: Debian's server on 127.0.0.1:5432, user postgres without a password
# over local TCP (trust: a test machine only), and a database named test.
PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
pg_port_open() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! command -v psql >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "== installing postgresql"
  apt_install postgresql
fi
if ! pg_port_open; then
  echo "== starting postgresql"
  pg_version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
fi
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432; then break; fi
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
if ! psql "$PG_ADMIN_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password over TCP: let the local postgres user in (first matching line wins).
  echo "== letting postgres connect over 127.0.0.1 without a password"
  pg_hba="$(as_root su postgres -c "psql -Atqc 'SHOW hba_file'")"
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$pg_hba"
  as_root su postgres -c "psql -Atqc 'SELECT pg_reload_conf()'" >/dev/null
  sleep 1
fi
if [ "$(psql "$PG_ADMIN_URL" -Atqc "SELECT count(*) FROM pg_database WHERE datname = 'test'")" != 1 ]; then
  echo "== creating the postgresql database test"
  psql "$PG_ADMIN_URL" -qc 'CREATE DATABASE test'
fi

echo "== npm ci"
npm ci --no-audit --no-fund

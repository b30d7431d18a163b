#!/usr/bin/env bash
# Sets up a machine for Tollgate: Node dependencies, Java (for DynamoDB Local), RabbitMQ (installed and started),
# amqp-tools and curl (independent clients used by interop tests), spin + gcc (the protocol model check).
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

echo "== npm ci"
npm ci --no-audit --no-fund

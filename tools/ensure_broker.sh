#!/usr/bin/env bash
# When no AMQP_URI is given: make sure the local RabbitMQ runs and has its management API, which the tests use
# to give each test session its own vhost.
set -euo pipefail
[ -n "${AMQP_URI:-}" ] && exit 0
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || { echo "RabbitMQ is not running and not installed" >&2; exit 1; }
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 60); do port_open 5672 && break; sleep 1; done
fi
if ! port_open 15672 && command -v rabbitmq-plugins >/dev/null; then
  echo "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  for _ in $(seq 30); do port_open 15672 && break; sleep 1; done
fi

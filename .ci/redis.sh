#!/usr/bin/env bash
# Install Debian's redis-server if it is missing (the limits tests start their own servers from it,
# on loopback ports of their own), start one on 127.0.0.1:6390 the way PostgreSQL is started, and
# print its URL on the last line.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root to install redis-server"; exit 1; }
if ! command -v redis-server >/dev/null; then
  timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq redis-server
fi
redis-cli -p 6390 ping >/dev/null 2>&1 \
  || redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes
for _ in $(seq 1 30); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.2; done
redis-cli -p 6390 ping
echo "redis://127.0.0.1:6390/0"

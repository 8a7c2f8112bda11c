#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster (installing it if needed) and print a
# URL for a throwaway test database on its last line. Loopback only.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "needs root to start PostgreSQL"; exit 1; }
if ! command -v pg_lsclusters >/dev/null; then
  timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq postgresql
fi
read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
pg_ctlcluster "$version" "$cluster" start || true
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')
as_pg() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -tAc \"$1\""; }
for _ in $(seq 1 30); do as_pg "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
as_pg "SELECT 1 FROM pg_roles WHERE rolname = 'persona_ci'" | grep -q 1 \
  || as_pg "CREATE ROLE persona_ci LOGIN PASSWORD 'persona-ci'"
as_pg "SELECT 1 FROM pg_database WHERE datname = 'persona_ci'" | grep -q 1 \
  || as_pg "CREATE DATABASE persona_ci OWNER persona_ci"
echo "postgresql://persona_ci:persona-ci@127.0.0.1:$port/persona_ci"

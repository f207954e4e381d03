#!/usr/bin/env bash
# PostgreSQL for the Aspire AppHost: a private instance from this machine's binaries (deploy/lib/postgres.sh), created
# on first run, then the server itself in the foreground (this script execs it), so the AppHost sees it run and stops
# it. Settings (environment, set by the AppHost): PG_DIR, PG_PORT, PG_PASSWORD, PG_DATABASE; optional PG_BIN, PG_USER.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() {
  printf 'postgres.sh: %s\n' "$*" >&2
  exit 1
}
: "${PG_DIR:?PG_DIR is required}" "${PG_PORT:?PG_PORT is required}" "${PG_PASSWORD:?PG_PASSWORD is required}"
# shellcheck source=SCRIPTDIR/../lib/postgres.sh
source "$ROOT/deploy/lib/postgres.sh"
PG_SETTINGS='max_connections = 300'
PG_PORT_HINT='set Conversations:PostgresPort (env Conversations__PostgresPort)'
PG_BIN=$(pg_bin_dir)
pg_exec_foreground

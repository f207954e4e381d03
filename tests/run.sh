#!/usr/bin/env bash
# Runs the test suite (`dotnet test Conversations.sln`) with what it needs, on a machine that has only the .NET SDK.
#
#   tests/run.sh [dotnet test arguments...]     e.g. tests/run.sh --filter "FullyQualifiedName~Postgres"
#
# Two passes, both must pass: the whole suite (the HTTP-level tests' gateways embedded: a co-hosted silo on SQLite),
# then, --no-build, the HTTP-level tests again (native API, the dialects, WebSocket, OpenAI SDK: the namespaces
# Conversations.Tests.Gateway and Conversations.Tests.Compat) with CONVERSATIONS_TEST_TOPOLOGY=cluster: each gateway an
# Orleans client of a cluster silo of its own on PostgreSQL. A --filter given here applies to both passes (the second
# selects its intersection with those namespaces). With CONVERSATIONS_TEST_TOPOLOGY already set, one pass only, in
# that topology, with the arguments as given.
#
# The PostgreSQL tests need a server. When CONVERSATIONS_TEST_POSTGRES (an Npgsql connection string) is set, they use
# that one and this script provisions nothing. Otherwise it
#   1. installs Debian's postgresql package when this machine has no PostgreSQL server binaries (and curl, which
#      deploy/local-cluster.sh needs, when it is missing) — that step needs root;
#   2. starts a private PostgreSQL in a temporary folder, on a free port of 127.0.0.1 (the same kind of instance as
#      deploy/local-cluster.sh's: deploy/lib/postgres.sh), tuned for tests: many connections, no fsync;
#   3. exports CONVERSATIONS_TEST_POSTGRES for it and runs dotnet test;
#   4. always stops that PostgreSQL and deletes its folder, whatever happened.
# Exits with the first failing pass's exit code, 0 when both passed (non-zero when provisioning failed).
#
# Settings (environment):
#   CONVERSATIONS_TEST_POSTGRES   use this server instead of provisioning one
#   CONVERSATIONS_TEST_TOPOLOGY   embedded or cluster: a single pass in that topology                both passes
#   CONVERSATIONS_TEST_CHROMIUM   the Chromium the browser tests launch                              /usr/bin/chromium
#   CONVERSATIONS_PG_USER         the OS user that runs the private PostgreSQL when run as root   postgres
#   PG_BIN                        the PostgreSQL server binaries to use                            found
#   TMPDIR                        where the temporary folder goes                                  /tmp
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf 'tests/run.sh: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The browser tests drive Debian's chromium through Playwright's ExecutablePath; Playwright never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# The browser tests (Conversations.Tests.Browser) need Debian's chromium: install it when it is missing (as root;
# otherwise those tests fail saying what to install).
if [[ -z ${CONVERSATIONS_TEST_CHROMIUM:-} ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [[ $EUID -eq 0 ]]; then
    log "installing chromium (Debian package) for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    log "chromium is missing and this is not root: the browser tests will fail (apt-get install chromium)"
  fi
fi

# The HTTP-level tests, which the second pass runs against cluster mode.
HTTP_TESTS='FullyQualifiedName~Conversations.Tests.Gateway|FullyQualifiedName~Conversations.Tests.Compat'

# run_suite [dotnet test arguments...]: the two passes (or one, when CONVERSATIONS_TEST_TOPOLOGY is set); returns the
# first failing pass's exit code, after running both.
run_suite() {
  if [[ -n ${CONVERSATIONS_TEST_TOPOLOGY:-} ]]; then
    log "one pass, CONVERSATIONS_TEST_TOPOLOGY=$CONVERSATIONS_TEST_TOPOLOGY"
    dotnet test Conversations.sln "$@"
    return
  fi

  # The second pass's arguments: the caller's, their --filter narrowed to the HTTP-level tests, and --no-build.
  local filter='' no_build=0 cluster_args=() arg
  while (($# > 0)); do
    arg=$1
    shift
    case $arg in
      --filter) filter=${1:-}; shift || true ;;
      --filter=*) filter=${arg#--filter=} ;;
      --no-build) no_build=1 ;;
      *) cluster_args+=("$arg") ;;
    esac
  done
  set -- "${cluster_args[@]}"
  local first=() second=()
  [[ -n $filter ]] && first+=(--filter "$filter")
  ((no_build)) && first+=(--no-build)
  second+=(--no-build --filter "${filter:+($filter)&}($HTTP_TESTS)")

  local status=0 started
  log "pass 1/2: the suite, gateways embedded"
  started=$SECONDS
  CONVERSATIONS_TEST_TOPOLOGY=embedded dotnet test Conversations.sln "$@" "${first[@]}" || status=$?
  log "pass 1/2 took $((SECONDS - started)) s (exit $status)"
  local second_status=0
  log "pass 2/2: the HTTP-level tests, gateways in cluster mode (CONVERSATIONS_TEST_TOPOLOGY=cluster)"
  started=$SECONDS
  CONVERSATIONS_TEST_TOPOLOGY=cluster dotnet test Conversations.sln "$@" "${second[@]}" || second_status=$?
  log "pass 2/2 took $((SECONDS - started)) s (exit $second_status)"
  ((status != 0)) || status=$second_status
  return "$status"
}

if [[ -n ${CONVERSATIONS_TEST_POSTGRES:-} ]]; then
  log "using the PostgreSQL server of CONVERSATIONS_TEST_POSTGRES"
  run_suite "$@"
  exit
fi

# shellcheck source=SCRIPTDIR/../deploy/lib/postgres.sh
source "$ROOT/deploy/lib/postgres.sh"

# 1. What to install: only what is missing.
packages=()
pg_find_bin >/dev/null || packages+=(postgresql)
command -v curl >/dev/null || packages+=(curl)
if ((${#packages[@]} > 0)); then
  [[ $EUID -eq 0 ]] || die "missing ${packages[*]}: run as root to install them, or install them yourself (apt-get install ${packages[*]})"
  log "installing ${packages[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${packages[@]}" >/dev/null
fi
PG_BIN=$(pg_bin_dir)

# 2. The private instance. From here on, whatever happens, the EXIT trap stops it and removes its folder.
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/conversations-test-pg.XXXXXX")
# shellcheck disable=SC2317 # reached through the traps
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ! pg_stop; then
    # pg_ctl failed or timed out: end the server by its recorded PID (first line of postmaster.pid).
    local pid
    pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]]; then kill -QUIT "$pid" 2>/dev/null || true; fi
  fi
  rm -rf "$PG_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port below the kernel's ephemeral range, so it does not collide with the ports the tests get from the OS.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((ephemeral_low > 21000)) || ephemeral_low=32768
PG_PORT=
for _ in $(seq 1 100); do
  candidate=$((20000 + RANDOM % (ephemeral_low - 20000)))
  if ! pg_port_in_use "$candidate"; then
    PG_PORT=$candidate
    break
  fi
done
[[ -n $PG_PORT ]] || die "found no free port on 127.0.0.1 between 20000 and $ephemeral_low"

PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# The tests run many clusters side by side (each node pools up to 20 connections); durability is not needed.
PG_SETTINGS="max_connections = 500
fsync = off
synchronous_commit = off
full_page_writes = off"
pg_start

# 3. The tests.
export CONVERSATIONS_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Password=$PG_PASSWORD"
log "PostgreSQL for the tests: 127.0.0.1:$PG_PORT (folder $PG_DIR, removed afterwards)"
status=0
run_suite "$@" || status=$?
exit "$status"

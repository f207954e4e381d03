#!/usr/bin/env bash
# Runs the cluster topology of docker-compose.yml as plain processes on loopback: a private PostgreSQL (from this
# machine's binaries, data under the state directory), silos and gateways from the Release build.
#
#   deploy/local-cluster.sh [start]   build, start PostgreSQL, the silos, then the gateways; print their URLs
#   deploy/local-cluster.sh status    what runs, with health
#   deploy/local-cluster.sh stop      stop exactly what start started (idempotent); data is kept
#   deploy/local-cluster.sh clean     stop, then delete the state directory (database included)
#
# Settings (environment):
#   CONVERSATIONS_CLUSTER_DIR      state directory (PIDs, logs, PostgreSQL data)     /tmp/conversations-cluster
#   CONVERSATIONS_PG_PORT          the private PostgreSQL's port (127.0.0.1 only)    55432
#   CONVERSATIONS_SILO_PORTS       silos' HTTP (health) ports, one silo each ("" = none) "7101 7102"
#   CONVERSATIONS_ORLEANS_PORTS    silo-to-silo ports, one per silo                  "11111 11112"
#   CONVERSATIONS_CLIENT_PORTS     Orleans gateway ports gateways connect to          "30000 30001"
#   CONVERSATIONS_GATEWAY_PORTS    gateway ports, one gateway each                   "8081 8082"
#   CONVERSATIONS_GATEWAY_HEALTH   path that says a gateway is ready                 /health/ready
#   CONVERSATIONS_SILO_HEALTH      path that says a silo is ready                    /health/ready
#   CONVERSATIONS_START_TIMEOUT    seconds to wait for each node's health            60
#   CONVERSATIONS_PG_USER          OS user that runs PostgreSQL when run as root     postgres
#   CONFIGURATION                  build configuration                               Release
#   SKIP_BUILD=1                   use the existing build
#   KEEP_ON_FAILURE=1              leave started processes running when start fails (to inspect them)
# Model settings (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, OpenAI__*) go to the silos only. Any other
# Cluster__* variable in the environment (e.g. Cluster__ProbeTimeout) reaches every node unchanged.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m "${CONVERSATIONS_CLUSTER_DIR:-/tmp/conversations-cluster}")
PG_PORT=${CONVERSATIONS_PG_PORT:-55432}
SILO_PORTS=${CONVERSATIONS_SILO_PORTS-7101 7102}
GATEWAY_PORTS=${CONVERSATIONS_GATEWAY_PORTS-8081 8082}
GATEWAY_HEALTH=${CONVERSATIONS_GATEWAY_HEALTH:-/health/ready}
SILO_HEALTH=${CONVERSATIONS_SILO_HEALTH:-/health/ready}
read -r -a ORLEANS_PORTS <<<"${CONVERSATIONS_ORLEANS_PORTS:-11111 11112 11113 11114 11115 11116 11117 11118}"
read -r -a CLIENT_PORTS <<<"${CONVERSATIONS_CLIENT_PORTS:-30000 30001 30002 30003 30004 30005 30006 30007}"
START_TIMEOUT=${CONVERSATIONS_START_TIMEOUT:-60}
STOP_TIMEOUT=${CONVERSATIONS_STOP_TIMEOUT:-20}
CONFIGURATION=${CONFIGURATION:-Release}
DATABASE=conversations

PG_DIR=$STATE/postgres          # owned by the PostgreSQL user: data/, postgres.log, socket/
PG_DATA=$PG_DIR/data
RUN_DIR=$STATE/run              # <node>.pid, <node>.url, <node>.health
LOG_DIR=$STATE/logs
NODE_DIR=$STATE/nodes           # each node's working directory
SECRETS=$STATE/secrets.env      # generated PostgreSQL password (mode 600)
MARKER=$STATE/.conversations-local-cluster

GATEWAY_DLL=$ROOT/src/Gateway/bin/$CONFIGURATION/net10.0/Conversations.Gateway.dll
SILO_DLL=$ROOT/src/Silo/bin/$CONFIGURATION/net10.0/Conversations.Silo.dll

STARTING=0

log() { printf '%s\n' "$*" >&2; }

die() {
  trap - ERR
  log "local-cluster: $*"
  if [[ $STARTING == 1 ]]; then
    STARTING=0
    if [[ ${KEEP_ON_FAILURE:-0} == 1 ]]; then
      log "local-cluster: KEEP_ON_FAILURE=1: leaving what started running; '$0 stop' ends it."
    else
      log "local-cluster: stopping what this start started."
      cmd_stop >&2 || true
    fi
  fi
  exit 1
}

trap 'die "unexpected failure (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -n 9 || die "another local-cluster.sh is working on $STATE"
}

# ---------------------------------------------------------------- PostgreSQL

# The private instance's functions (pg_bin_dir, pg_start, pg_stop, pg_running, pg_psql, pg_port_in_use), shared
# with tests/run.sh; they read PG_DIR, PG_PORT, PG_PASSWORD, PG_SETTINGS, PG_BIN and PG_USER.
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source "$ROOT/deploy/lib/postgres.sh"
PG_SETTINGS='max_connections = 300'
PG_PORT_HINT='set CONVERSATIONS_PG_PORT'

random_hex() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

load_secrets() {
  if [[ ! -f $SECRETS ]]; then
    (
      umask 077
      printf 'PG_PASSWORD=%s\n' "$(random_hex)" >"$SECRETS"
    )
  fi
  # shellcheck source=/dev/null
  source "$SECRETS"
  CONNECTION_STRING="Host=127.0.0.1;Port=$PG_PORT;Database=$DATABASE;Username=postgres;Password=$PG_PASSWORD"
}

port_in_use() { pg_port_in_use "$@"; }

start_postgres() {
  pg_start
  if [[ -z $(pg_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'") ]]; then
    pg_psql postgres -c "CREATE DATABASE $DATABASE"
  fi
}

# ---------------------------------------------------------------- nodes

# A recorded PID is ours only while it runs and still runs our dll (PIDs get reused).
node_pid() {
  local name=$1 pid
  [[ -f $RUN_DIR/$name.pid ]] || return 1
  pid=$(<"$RUN_DIR/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(<"$RUN_DIR/$name.dll")" || return 1
  echo "$pid"
}

recorded_nodes() {
  local file
  for file in "$RUN_DIR"/*.pid; do
    [[ -e $file ]] && basename "$file" .pid
  done
  return 0
}

start_node() {
  local name=$1 role=$2 port=$3 dll=$4 health=$5 orleans_port=${6:-} client_port=${7:-}
  local url="http://127.0.0.1:$port/"
  port_in_use "$port" && die "port $port (for $name) is taken by another process: set CONVERSATIONS_${role^^}_PORTS"
  mkdir -p "$NODE_DIR/$name"
  local envs=(
    "ASPNETCORE_ENVIRONMENT=${ASPNETCORE_ENVIRONMENT:-Production}"
    "DOTNET_ENVIRONMENT=${DOTNET_ENVIRONMENT:-Production}"
    "Cluster__PostgresConnectionString=$CONNECTION_STRING"
  )
  local unset=()
  if [[ $role == silo ]]; then
    port_in_use "$orleans_port" && die "port $orleans_port (silo-to-silo, for $name) is taken: set CONVERSATIONS_ORLEANS_PORTS"
    port_in_use "$client_port" && die "port $client_port (Orleans gateway, for $name) is taken: set CONVERSATIONS_CLIENT_PORTS"
    envs+=("Cluster__AdvertisedAddress=127.0.0.1" "Cluster__SiloPort=$orleans_port" "Cluster__GatewayPort=$client_port")
  else
    # Models are called by silos only.
    unset=(-u OPENAI_API_KEY -u OPENAI_BASE_URL -u OPENAI_MODEL -u Cluster__AdvertisedAddress -u Cluster__SiloPort -u Cluster__GatewayPort)
    local var
    for var in $(compgen -e); do
      [[ $var == OpenAI__* ]] && unset+=(-u "$var")
    done
  fi
  printf '%s\n' "$dll" >"$RUN_DIR/$name.dll"
  printf '%s\n' "$url" >"$RUN_DIR/$name.url"
  printf '%s\n' "$health" >"$RUN_DIR/$name.health"
  # The node's working folder is its own (logs, dumps); its content root is the build output, so its appsettings.json
  # (log levels, the default agent, heartbeats) applies as it does in the container images.
  # setsid: its own session, so a Ctrl-C in this terminal later doesn't reach it; fd 9 (the lock) is not inherited.
  (trap - ERR && cd "$NODE_DIR/$name" && exec env "${unset[@]}" "${envs[@]}" setsid dotnet "$dll" --contentRoot "$(dirname "$dll")" --urls "http://127.0.0.1:$port" \
    </dev/null >"$LOG_DIR/$name.log" 2>&1 9>&-) &
  echo $! >"$RUN_DIR/$name.pid"
  log "started $name (pid $!) on $url"
}

wait_healthy() {
  local name=$1 url health pid deadline
  url=$(<"$RUN_DIR/$name.url")
  health=$(<"$RUN_DIR/$name.health")
  deadline=$((SECONDS + START_TIMEOUT))
  while ! curl -fsS -o /dev/null --max-time 2 "${url%/}$health" 2>/dev/null; do
    if ! pid=$(node_pid "$name"); then
      log "---- last lines of $LOG_DIR/$name.log"
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited before ${url%/}$health answered (log: $LOG_DIR/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      log "---- last lines of $LOG_DIR/$name.log"
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name (pid $pid) did not answer ${url%/}$health within ${START_TIMEOUT}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.5
  done
}

# SIGTERM to every named node at once (they shut down gracefully in parallel), SIGKILL after STOP_TIMEOUT.
stop_nodes() {
  local name pid deadline pids=()
  for name in "$@"; do
    if pid=$(node_pid "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "pid $pid did not exit within ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  done
  for name in "$@"; do rm -f "$RUN_DIR/$name.pid"; done
}

# ---------------------------------------------------------------- commands

check_build() {
  [[ -f $GATEWAY_DLL ]] || die "$GATEWAY_DLL is missing: build first (or drop SKIP_BUILD)"
  if [[ -n ${SILO_PORTS// /} ]]; then
    # A class library also produces Conversations.Silo.dll; only an app has a runtimeconfig.json.
    [[ -f $SILO_DLL && -f ${SILO_DLL%.dll}.runtimeconfig.json ]] \
      || die "$SILO_DLL is not an executable silo yet (no Conversations.Silo.runtimeconfig.json next to it): src/Silo must build as an app. CONVERSATIONS_SILO_PORTS= starts gateways only."
  fi
}

cmd_start() {
  lock_state
  : >"$MARKER"
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$NODE_DIR"
  local name
  for name in $(recorded_nodes); do
    node_pid "$name" >/dev/null && die "$name is already running (see '$0 status'); '$0 stop' first"
  done
  rm -f "$RUN_DIR"/*
  STARTING=1

  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "dotnet build -c $CONFIGURATION (log: $LOG_DIR/build.log)"
    dotnet build "$ROOT/Conversations.sln" -c "$CONFIGURATION" -nologo >"$LOG_DIR/build.log" 2>&1 9>&- \
      || { grep -E 'error|Error' "$LOG_DIR/build.log" | tail -n 20 >&2 || true; die "build failed (log: $LOG_DIR/build.log)"; }
  fi
  check_build

  PG_BIN=$(pg_bin_dir)
  load_secrets
  start_postgres

  local i=0 port silos=() gateways=()
  for port in $SILO_PORTS; do
    i=$((i + 1))
    ((i <= ${#ORLEANS_PORTS[@]} && i <= ${#CLIENT_PORTS[@]})) || die "more silos than CONVERSATIONS_ORLEANS_PORTS / CONVERSATIONS_CLIENT_PORTS give ports for"
    start_node "silo-$i" silo "$port" "$SILO_DLL" "$SILO_HEALTH" "${ORLEANS_PORTS[i - 1]}" "${CLIENT_PORTS[i - 1]}"
    silos+=("silo-$i")
  done
  for name in "${silos[@]}"; do wait_healthy "$name"; done
  i=0
  for port in $GATEWAY_PORTS; do
    i=$((i + 1))
    start_node "gateway-$i" gateway "$port" "$GATEWAY_DLL" "$GATEWAY_HEALTH"
    gateways+=("gateway-$i")
  done
  for name in "${gateways[@]}"; do wait_healthy "$name"; done
  STARTING=0

  # For scripts and tests: `source $STATE/cluster.env`.
  local urls=()
  for name in "${gateways[@]}"; do urls+=("$(<"$RUN_DIR/$name.url")"); done
  (
    umask 077
    {
      printf 'CONVERSATIONS_CLUSTER_GATEWAYS=%q\n' "${urls[*]}"
      printf 'CONVERSATIONS_CLUSTER_POSTGRES=%q\n' "$CONNECTION_STRING"
    } >"$STATE/cluster.env"
  )

  echo "Conversations cluster is up (state: $STATE)"
  if ((${#silos[@]} > 0)); then
    echo "  Orleans membership: $(pg_psql "$DATABASE" -tAc "SELECT count(*) FROM orleansmembershiptable WHERE status = 3") silos active"
  fi
  printf '  %-10s %-26s %s\n' postgres "127.0.0.1:$PG_PORT/$DATABASE" "$PG_DIR/postgres.log"
  for name in "${silos[@]}" "${gateways[@]}"; do
    printf '  %-10s %-26s %s\n' "$name" "$(<"$RUN_DIR/$name.url")" "$LOG_DIR/$name.log"
  done
  echo "Gateways:"
  for name in "${gateways[@]}"; do echo "  $(<"$RUN_DIR/$name.url")"; done
  echo "Connection string and gateway URLs: $STATE/cluster.env. Stop: $0 stop"
}

cmd_stop() {
  if [[ ! -f $MARKER ]]; then
    log "nothing to stop: $STATE holds no cluster started by this script"
    return 0
  fi
  [[ $STARTING == 1 ]] || lock_state
  # Gateways first (they call silos), then silos, then PostgreSQL.
  # shellcheck disable=SC2046 # node names are single words
  stop_nodes $(recorded_nodes | grep '^gateway-' || true)
  # shellcheck disable=SC2046
  stop_nodes $(recorded_nodes | grep -v '^gateway-' || true)
  if [[ -f $PG_DATA/PG_VERSION ]]; then
    PG_BIN=$(pg_bin_dir)
    pg_stop
  fi
  log "stopped (state kept in $STATE; '$0 clean' deletes it)"
}

cmd_status() {
  local name pid url health any=0
  if [[ ! -f $MARKER ]]; then
    echo "(nothing started from $STATE)"
    return 0
  fi
  PG_BIN=$(pg_bin_dir)
  if pg_running; then
    echo "postgres   running   $(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null | sed 's/^/pid /')  port $(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null)"
    any=1
  elif [[ -f $PG_DATA/PG_VERSION ]]; then
    echo "postgres   stopped   (data in $PG_DATA)"
  else
    echo "postgres   none"
  fi
  for name in $(recorded_nodes); do
    url=$(<"$RUN_DIR/$name.url")
    health=$(<"$RUN_DIR/$name.health")
    if pid=$(node_pid "$name"); then
      any=1
      if curl -fsS -o /dev/null --max-time 2 "${url%/}$health" 2>/dev/null; then
        echo "$name  running   pid $pid  $url  healthy"
      else
        echo "$name  running   pid $pid  $url  NOT healthy (${health})"
      fi
    else
      echo "$name  stopped   $url"
    fi
  done
  [[ $any == 1 ]] || echo "(nothing running from $STATE)"
}

cmd_clean() {
  cmd_stop
  if [[ -f $MARKER ]]; then
    rm -rf "$STATE"
    log "deleted $STATE"
  else
    log "$STATE was not created by this script (no marker file): not deleting it"
  fi
}

case ${1:-start} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  -h | --help | help) sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (start | stop | status | clean)" ;;
esac

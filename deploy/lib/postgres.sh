# A private PostgreSQL server from this machine's binaries: its own data folder, its own port on 127.0.0.1, its own
# socket directory, so it never touches a system cluster. Sourced (not run) by deploy/local-cluster.sh and
# tests/run.sh.
#
# The sourcing script defines `die MESSAGE` (print, exit non-zero) and, before calling the functions below, sets:
#   PG_DIR        the instance's folder: data/, socket/, postgres.log, initdb.log (owned by PG_USER when run as root)
#   PG_PORT       the TCP port on 127.0.0.1
#   PG_PASSWORD   the password of the superuser `postgres` over TCP (scram-sha-256; the socket uses peer auth)
#   PG_SETTINGS   optional: more postgresql.conf lines (e.g. max_connections), appended at initdb
#   PG_PORT_HINT  optional: what to tell the user when PG_PORT is taken (e.g. the variable that sets it)
#   PG_BIN        the server binaries; pg_bin_dir finds them
#   PG_USER       the OS user that runs initdb and the server when the script runs as root (both refuse root);
#                 default $CONVERSATIONS_PG_USER, else postgres
# shellcheck shell=bash

: "${PG_USER:=${CONVERSATIONS_PG_USER:-postgres}}"

# Prints the folder of the server binaries (initdb, pg_ctl, psql); fails quietly when there are none.
pg_find_bin() {
  local dir
  if [[ -n ${PG_BIN:-} ]]; then
    echo "$PG_BIN"
    return 0
  fi
  if command -v pg_config >/dev/null && dir=$(pg_config --bindir 2>/dev/null) && [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
    echo "$dir"
    return 0
  fi
  # Debian's packages: /usr/lib/postgresql/<major>/bin; the newest major wins.
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
    echo "$dir"
    return 0
  fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

# Like pg_find_bin, but dies when there are no binaries.
pg_bin_dir() {
  pg_find_bin || die "no PostgreSQL server binaries (initdb, pg_ctl): install them (Debian: apt-get install postgresql) or set PG_BIN"
}

# Runs a command as the user that owns the instance: initdb and postgres refuse to run as root. From /, since that
# user may not be allowed into the caller's working directory (e.g. a checkout under /root).
pg_as_owner() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    "$@"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
pg_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when the instance in PG_DIR runs.
pg_running() {
  [[ -f $PG_DIR/data/PG_VERSION ]] && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

# Creates the instance in PG_DIR unless it exists: superuser `postgres` with PG_PASSWORD, TCP on 127.0.0.1 only.
pg_init() {
  local data=$PG_DIR/data
  if [[ -f $data/PG_VERSION ]]; then
    return 0
  fi
  echo "initdb: $data" >&2
  mkdir -p "$PG_DIR"
  if [[ $EUID -eq 0 ]]; then
    id -u "$PG_USER" >/dev/null 2>&1 || die "running as root, PostgreSQL needs a non-root OS user: create '$PG_USER' or set CONVERSATIONS_PG_USER"
    chown "$PG_USER" "$PG_DIR"
    runuser -u "$PG_USER" -- test -w "$PG_DIR" \
      || die "user $PG_USER cannot write $PG_DIR (a parent directory is not traversable?): choose another folder"
  fi
  chmod 700 "$PG_DIR"
  local pwfile=$PG_DIR/pwfile
  (
    umask 077
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  )
  if [[ $EUID -eq 0 ]]; then chown "$PG_USER" "$pwfile"; fi
  pg_as_owner "$PG_BIN/initdb" -D "$data" --username=postgres --pwfile="$pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed (log: $PG_DIR/initdb.log)"; }
  rm -f "$pwfile"
  pg_as_owner mkdir -p "$PG_DIR/socket"
  # Loopback TCP only, and a socket directory of its own, so nothing collides with a system PostgreSQL.
  pg_as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF

# private instance (deploy/lib/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR/socket'
${PG_SETTINGS:-}
EOF
}

# Starts the instance in PG_DIR (pg_init first) on 127.0.0.1:PG_PORT and waits until it accepts connections.
pg_start() {
  pg_init
  if pg_running; then
    echo "PostgreSQL already running on $PG_DIR/data" >&2
    return 0
  fi
  if pg_port_in_use "$PG_PORT"; then
    die "port $PG_PORT is taken by another process${PG_PORT_HINT:+: $PG_PORT_HINT}"
  fi
  echo "starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)" >&2
  # fd 9 is local-cluster.sh's lock: the server must not inherit it.
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null 9>&- \
    || { tail -n 30 "$PG_DIR/postgres.log" >&2 || true; die "PostgreSQL did not start (log: $PG_DIR/postgres.log)"; }
}

# Stops the instance in PG_DIR if it runs (fast shutdown: open sessions are ended).
pg_stop() {
  if pg_running; then
    echo "stopping PostgreSQL ($PG_DIR)" >&2
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null
  fi
}

# psql as the superuser over TCP, stopping at the first error: pg_psql DATABASE ARGS...
pg_psql() {
  local database=$1
  shift
  PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -d "$database" "$@"
}

# Creates DATABASE in the stopped instance in PG_DIR unless it was there (single-user mode, no server, no port).
pg_create_database_offline() {
  local database=$1
  if pg_as_owner "$PG_BIN/postgres" --single -D "$PG_DIR/data" -j postgres <<<"SELECT 1 FROM pg_database WHERE datname = '$database';" 2>/dev/null | grep -q '?column? = "1"'; then
    return 0
  fi
  echo "creating database $database" >&2
  pg_as_owner "$PG_BIN/postgres" --single -D "$PG_DIR/data" -j postgres <<<"CREATE DATABASE $database;" >/dev/null \
    || die "could not create database $database"
}

# Replaces the calling shell with the instance's server in the foreground (pg_init first) on 127.0.0.1:PG_PORT, for a
# supervisor that watches the process and stops it with a signal (SIGTERM: smart, SIGINT: fast shutdown). As root it
# runs as PG_USER through setpriv, which execs (no process in between to forward signals).
pg_exec_foreground() {
  pg_init
  if pg_running; then
    die "PostgreSQL already runs on $PG_DIR/data (pid $(sed -n 1p "$PG_DIR/data/postmaster.pid")): stop it first"
  fi
  if pg_port_in_use "$PG_PORT"; then
    die "port $PG_PORT is taken by another process${PG_PORT_HINT:+: $PG_PORT_HINT}"
  fi
  if [[ -n ${PG_DATABASE:-} ]]; then
    pg_create_database_offline "$PG_DATABASE"
  fi
  echo "PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR), in the foreground" >&2
  cd /
  if [[ $EUID -eq 0 ]]; then
    exec setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --init-groups -- "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT"
  fi
  exec "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT"
}

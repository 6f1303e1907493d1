#!/usr/bin/env bash
# A private PostgreSQL for development and tests, on a free loopback port, in a folder of its own.
#
#   deploy/local/postgres.sh start [DIR]   initdb (trust auth, user postgres) and start; prints the URL
#   deploy/local/postgres.sh stop  [DIR]   stops the server started there (by its PID) and removes DIR
#   deploy/local/postgres.sh find          exits 0 when PostgreSQL's binaries are here (or installable)
#
# DIR defaults to ${TMPDIR:-/tmp}/accountd-local-postgres. ACCOUNTD_LOCAL_PG_PORT picks the port.
# ACCOUNTD_PG_BINDIR names the folder of initdb/pg_ctl/postgres; otherwise the newest
# /usr/lib/postgresql/*/bin or the PATH is used, and as root the Debian package `postgresql` is
# installed when none is found. Durability is off (fsync=off): this server holds test data only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=${2:-${TMPDIR:-/tmp}/accountd-local-postgres}

# Prints the folder holding initdb, pg_ctl and postgres, or fails.
bindir() {
  if [ -n "${ACCOUNTD_PG_BINDIR:-}" ]; then
    [ -x "$ACCOUNTD_PG_BINDIR/postgres" ] && echo "$ACCOUNTD_PG_BINDIR"
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ] && [ -x "$found/postgres" ]; then echo "$found"; return; fi
  if command -v postgres >/dev/null && command -v initdb >/dev/null; then
    dirname "$(command -v postgres)"
    return
  fi
  return 1
}

find_or_install() {
  bindir && return
  [ -z "${ACCOUNTD_PG_BINDIR:-}" ] && local_apt_install postgresql && bindir
}

# Runs a command as the unprivileged user `postgres` when we are root (PostgreSQL refuses root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups -- "$@"
  else
    "$@"
  fi
}

start() {
  local bin port
  bin=$(find_or_install) || { local_say "no PostgreSQL binaries (install the Debian package postgresql)"; exit 1; }
  port=${ACCOUNTD_LOCAL_PG_PORT:-$(local_free_port)}
  mkdir -p "$dir"
  # The server runs as `postgres` when we are root: it must be able to reach its folder.
  chmod 0755 "$dir"
  [ "$(id -u)" = 0 ] && chmod o+x "$(dirname "$dir")"
  mkdir -p "$dir/data"
  [ "$(id -u)" = 0 ] && chown postgres "$dir" "$dir/data"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { local_say "initdb failed: see $dir/initdb.log"; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null 2>&1 || { local_say "PostgreSQL did not start: see $dir/postgres.log"; exit 1; }
  head -n 1 "$dir/data/postmaster.pid" >"$dir/pid"
  echo "$port" >"$dir/port"
  local_wait_listening 127.0.0.1 "$port" 30 || { local_say "PostgreSQL does not listen on $port"; exit 1; }
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
  # SIGINT is PostgreSQL's fast shutdown: sessions are ended, nothing is waited for.
  local_stop_pid "$dir/pid" INT
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  find) find_or_install >/dev/null ;;
  *) echo "usage: $0 start|stop|find [DIR]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A private NATS server with JetStream for development and tests, on a free loopback port.
#
#   deploy/local/nats.sh start [DIR]   starts nats-server -js storing in DIR; prints the URL
#   deploy/local/nats.sh stop  [DIR]   stops the server started there (by its PID) and removes DIR
#   deploy/local/nats.sh find          exits 0 when nats-server is here (or installable)
#
# DIR defaults to ${TMPDIR:-/tmp}/accountd-local-nats. ACCOUNTD_LOCAL_NATS_PORT picks the port.
# ACCOUNTD_TEST_NATS_SERVER names the binary; otherwise nats-server on the PATH or /usr/sbin, and as
# root the Debian package `nats-server` is installed when none is found.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=${2:-${TMPDIR:-/tmp}/accountd-local-nats}

binary() {
  if [ -n "${ACCOUNTD_TEST_NATS_SERVER:-}" ]; then
    [ -x "$ACCOUNTD_TEST_NATS_SERVER" ] && echo "$ACCOUNTD_TEST_NATS_SERVER"
    return
  fi
  command -v nats-server 2>/dev/null && return
  [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server
}

find_or_install() {
  binary && return
  [ -z "${ACCOUNTD_TEST_NATS_SERVER:-}" ] && local_apt_install nats-server && binary
}

start() {
  local bin port
  bin=$(find_or_install) || { local_say "no nats-server (install the Debian package nats-server)"; exit 1; }
  port=${ACCOUNTD_LOCAL_NATS_PORT:-$(local_free_port)}
  mkdir -p "$dir/store"
  # setsid: the server must not take the caller's Ctrl-C before the caller stops it in order.
  setsid "$bin" -js -a 127.0.0.1 -p "$port" -sd "$dir/store" >"$dir/nats.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "$port" >"$dir/port"
  local_wait_listening 127.0.0.1 "$port" 15 || { local_say "nats-server did not start: see $dir/nats.log"; exit 1; }
  echo "nats://127.0.0.1:$port"
}

stop() {
  local_stop_pid "$dir/pid" TERM
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  find) find_or_install >/dev/null ;;
  *) echo "usage: $0 start|stop|find [DIR]" >&2; exit 2 ;;
esac

# Helpers shared by deploy/local/*.sh and deploy/test.sh (sourced, not run).
#
# Everything here works on loopback only and touches only processes it started itself: a service
# is stopped by the PID recorded when it was started, never by name.

# Prints a message on stderr, prefixed by the calling script's name.
local_say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# Succeeds when something accepts TCP connections at HOST PORT (within 2 seconds).
local_reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# "host port" of a URL such as postgres://user@host:port/db or nats://host:port (DEFAULT_PORT
# when the URL names none).
local_host_port() {
  local url=$1 default_port=$2 rest host port
  rest=${url#*://}
  rest=${rest%%/*}
  rest=${rest##*@}
  host=${rest%:*}
  port=${rest##*:}
  [ "$host" = "$rest" ] && port=$default_port
  [ -z "$host" ] && host=127.0.0.1
  printf '%s %s\n' "$host" "$port"
}

# A loopback TCP port nothing listens on (a random one, tried until free).
local_free_port() {
  local port tries=0
  while [ $tries -lt 100 ]; do
    port=$((20000 + RANDOM % 40000))
    if ! local_reachable 127.0.0.1 "$port"; then
      echo "$port"
      return 0
    fi
    tries=$((tries + 1))
  done
  return 1
}

# Installs Debian PACKAGE when we are root on a machine with apt-get; fails quietly otherwise.
local_apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  local_say "installing the Debian package $1"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$1" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$1" >/dev/null 2>&1; }
}

# Waits until HOST PORT accepts connections, for at most SECONDS.
local_wait_listening() {
  local deadline=$((SECONDS + $3))
  until local_reachable "$1" "$2"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# Stops the process whose PID is in FILE: SIGNAL first, SIGKILL after 15 seconds.
local_stop_pid() {
  local file=$1 signal=$2 pid deadline
  [ -f "$file" ] || return 0
  pid=$(head -n 1 "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "-$signal" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  fi
  rm -f "$file"
}

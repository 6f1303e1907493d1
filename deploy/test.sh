#!/usr/bin/env bash
# The test command of the README: the workspace's tests against PostgreSQL and NATS JetStream.
#
# It uses the servers at ACCOUNTD_TEST_DATABASE_URL and ACCOUNTD_TEST_NATS_URL (default
# 127.0.0.1:5432 and 127.0.0.1:4222) when they answer; otherwise it starts private ones on free
# loopback ports (deploy/local/), installing PostgreSQL or nats-server with apt-get when root and
# missing, and stops them (by PID) when the tests end. Chromium and chromedriver (for the test of
# the reset page) are installed the same way when missing. Each test makes its own database and stream
# prefix, so tests run in parallel and never disturb a shared server.
#
# Arguments go to `cargo test` as they are (`./deploy/test.sh -p gateway --test pages`); without
# -p/--package/--manifest-path the whole workspace is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/local/lib.sh

pg_url=${ACCOUNTD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
nats_url=${ACCOUNTD_TEST_NATS_URL:-nats://127.0.0.1:4222}
# shellcheck disable=SC2046 # word splitting into host and port is wanted
local_reachable $(local_host_port "$pg_url" 5432) && need_pg=false || need_pg=true
# shellcheck disable=SC2046
local_reachable $(local_host_port "$nats_url" 4222) && need_nats=false || need_nats=true

# Everything missing is named in one line before anything is started.
missing=() unreachable=()
if $need_pg && ! deploy/local/postgres.sh find; then
  missing+=("PostgreSQL 13+ (Debian package postgresql)") unreachable+=("$pg_url")
fi
if $need_nats && ! deploy/local/nats.sh find; then
  missing+=("NATS with JetStream (Debian package nats-server)") unreachable+=("$nats_url")
fi
# The reset page is tested in headless Chromium over WebDriver (tests/tests/browser.rs).
chromium=${ACCOUNTD_TEST_CHROMIUM:-/usr/bin/chromium}
have_browser() { command -v "${ACCOUNTD_TEST_CHROMEDRIVER:-chromedriver}" >/dev/null && [ -x "$chromium" ]; }
have_browser || { local_apt_install chromium && local_apt_install chromium-driver && have_browser; } ||
  missing+=("Chromium with its WebDriver (Debian packages chromium, chromium-driver)")
if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf '%s; ' "${missing[@]}")
  echo "deploy/test.sh: install ${list%; }${unreachable[*]:+ (nothing answers at ${unreachable[*]} and there is no binary to start one; or set ACCOUNTD_TEST_DATABASE_URL / ACCOUNTD_TEST_NATS_URL)}" >&2
  exit 1
fi

# Private servers live in a folder made only when one is needed.
state=
if $need_pg || $need_nats; then
  state=$(mktemp -d "${TMPDIR:-/tmp}/accountd-test.XXXXXX")
fi
cleanup() {
  [ -n "$state" ] || return 0
  deploy/local/nats.sh stop "$state/nats" || true
  deploy/local/postgres.sh stop "$state/postgres" || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if $need_pg; then
  local_say "no PostgreSQL at $pg_url: starting a private one"
  pg_url=$(deploy/local/postgres.sh start "$state/postgres")
  local_say "PostgreSQL at $pg_url"
fi
if $need_nats; then
  local_say "no NATS at $nats_url: starting a private one"
  nats_url=$(deploy/local/nats.sh start "$state/nats")
  local_say "NATS at $nats_url"
fi
export ACCOUNTD_TEST_DATABASE_URL=$pg_url ACCOUNTD_TEST_NATS_URL=$nats_url
# The fault tests start nats-server processes of their own: tell them where it is.
if [ -z "${ACCOUNTD_TEST_NATS_SERVER:-}" ] && command -v nats-server >/dev/null; then
  export ACCOUNTD_TEST_NATS_SERVER=$(command -v nats-server)
fi

scope=(--workspace)
for arg in "$@"; do
  case $arg in
    -p | -p* | --package | --package=* | --manifest-path | --manifest-path=* | --workspace) scope=() ;;
  esac
done
# The cluster test (tests/tests/cluster.rs) runs the `accountd` binary itself, one process per
# role: build it first when the tests package is run, and say where it is.
if [ ${#scope[@]} -gt 0 ] || [[ " $* " == *tests* ]]; then
  cargo build --locked -p gateway --bin accountd
  bin=${CARGO_TARGET_DIR:-target}/debug/accountd
  [ -x "$bin" ] && export ACCOUNTD_TEST_BIN=${ACCOUNTD_TEST_BIN:-$(cd "$(dirname "$bin")" && pwd)/accountd}
fi
# Not exec: the trap must stop the private servers after cargo ends.
cargo test --locked "${scope[@]}" "$@"

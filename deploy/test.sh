#!/usr/bin/env bash
# The test command of the README: every test of the workspace against the local PostgreSQL and
# NATS (each test makes its own database and stream prefix, so they run in parallel).
set -euo pipefail
cd "$(dirname "$0")/.."
export ACCOUNTD_TEST_DATABASE_URL="${ACCOUNTD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export ACCOUNTD_TEST_NATS_URL="${ACCOUNTD_TEST_NATS_URL:-nats://127.0.0.1:4222}"
exec cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# Set up the environment (first time only) and run every check: ruff, mypy, pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k ffa
source "$(dirname "$0")/env.sh"
# The integration tests start a real redis-server.
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is needed by the integration tests: install it (e.g. apt-get install redis-server)" >&2
    exit 1
  fi
fi
echo "==> ruff";   ruff check .
echo "==> mypy";   mypy
echo "==> pytest"; python -m pytest "$@"

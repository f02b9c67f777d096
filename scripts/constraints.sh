#!/usr/bin/env bash
# Write constraints.txt from the project's environment: the versions the tests ran with.
# Run after changing a dependency in pyproject.toml (and scripts/test.sh after it).
source "$(dirname "$0")/env.sh"
{
  echo "# The versions prodseg is tested with: scripts/env.sh (CI and the demo), the Docker images"
  echo "# and the client-install test all install with -c constraints.txt."
  echo "# Written by scripts/constraints.sh; tests/unit/test_constraints.py checks it."
  python -m pip freeze --exclude-editable --disable-pip-version-check 2>/dev/null | grep -v '^#'
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins"

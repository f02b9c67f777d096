# Sourced by the other scripts: make (once) and activate the project's virtual environment.
# PYTHON picks the interpreter (default python3); VENV the location (default .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when pyproject.toml or constraints.txt changed since the last install.
# Every extra (the dev extra holds [all]) at the versions constraints.txt pins: the ones
# the tests run with, and the ones the Docker images install.
stamp="$VENV/.prodseg-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] \
    || [ "$ROOT/constraints.txt" -nt "$stamp" ] \
    || [ "$ROOT/tests/annotation-tools.txt" -nt "$stamp" ]; then
  echo "==> installing prodseg and its dependencies (PyTorch is large: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
  # Label Studio's and CVAT's readers, for the tests only (why --no-deps: in the file).
  "$VENV/bin/python" -m pip install --quiet --no-deps -r "$ROOT/tests/annotation-tools.txt"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"

#!/usr/bin/env bash
# mypy over the installed module names. The user's top-level folders install as
# subpackages of prodseg (pyproject's package-dir), which mypy cannot see through an
# editable install; a tree of links in .typecheck/ gives it the same names.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .typecheck && mkdir -p .typecheck/prodseg
for f in prodseg/*.py; do ln -s "$PWD/$f" .typecheck/prodseg/; done
for sub in producer storage tasks workers; do ln -s "$PWD/$sub" ".typecheck/prodseg/$sub"; done
exec mypy "$@"

#!/usr/bin/env bash
# The whole test suite: lint, type checks, unit tests and integration tests on real servers.
# Extra arguments go to pytest (e.g. `bash tools/test.sh -m "not integration"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
echo "== ruff" >&2
uv run --frozen ruff check .
echo "== mypy" >&2
uv run --frozen mypy
echo "== pytest" >&2
exec uv run --frozen pytest "$@"

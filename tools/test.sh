#!/usr/bin/env bash
# The whole test suite: lint, type checks, unit tests and integration tests on real servers.
# Extra arguments go to pytest (e.g. `bash tools/test.sh -m "not integration"`, or test paths).
# Two environments run tests (docs/architecture.md#environments): the root one (.venv) runs everything
# but infra's tests, which import Pulumi and run in infra's (infra/.venv). Exit status: the first
# failing step's; 5 (pytest collected nothing) only when neither run collected a test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
echo "== ruff" >&2
uv run --frozen ruff check .
echo "== mypy (root)" >&2
uv run --frozen mypy
echo "== mypy (infra)" >&2
uv run --frozen --project infra mypy --config-file infra/pyproject.toml

# This order: both folders' tests import names from `conftest`, which must be tests/unit/infra's (the
# conftest loaded last at start-up).
INFRA_TESTS=(tests/integration/infra tests/unit/infra)
# Test paths among the arguments go to the environment they belong to; options go to both runs.
opts=() root_paths=() infra_paths=()
for arg in "$@"; do
  path="${arg%%::*}"
  if [[ "$arg" == -* || ! -e "$path" ]]; then
    opts+=("$arg")
    continue
  fi
  path="$(realpath --relative-to=. "$path")"
  under_infra=""
  for dir in "${INFRA_TESTS[@]}"; do
    if [[ "$path" == "$dir" || "$path" == "$dir"/* ]]; then
      under_infra=1
    elif [[ "$path" == . || "$dir" == "$path"/* ]]; then
      infra_paths+=("$dir")  # a folder that holds infra's tests: they run in infra's environment
    fi
  done
  if [[ -n "$under_infra" ]]; then infra_paths+=("$arg"); else root_paths+=("$arg"); fi
done
if ((${#root_paths[@]} + ${#infra_paths[@]} == 0)); then
  root_paths=(tests) infra_paths=("${INFRA_TESTS[@]}")
fi

rcs=()
if ((${#root_paths[@]})); then
  echo "== pytest (root environment)" >&2
  rc=0; uv run --frozen pytest "${opts[@]}" "${root_paths[@]}" || rc=$?; rcs+=("$rc")
fi
if ((${#infra_paths[@]})); then
  echo "== pytest (infra environment)" >&2
  rc=0; uv run --frozen --project infra pytest "${opts[@]}" "${infra_paths[@]}" || rc=$?; rcs+=("$rc")
fi
for rc in "${rcs[@]}"; do
  if [[ "$rc" != 0 && "$rc" != 5 ]]; then exit "$rc"; fi
done
for rc in "${rcs[@]}"; do
  if [[ "$rc" == 0 ]]; then exit 0; fi
done
exit 5

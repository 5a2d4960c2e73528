#!/usr/bin/env bash
# Bring the local stack up and run a short demo (installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
exec uv run --frozen coffee-rt demo

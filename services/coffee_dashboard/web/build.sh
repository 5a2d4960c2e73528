#!/usr/bin/env bash
# Vendor the dashboard's browser dependency: `npm ci` from package-lock.json (integrity-checked,
# no install scripts), then copy uPlot's built files into ../static/vendor/ (git-ignored).
# Idempotent: skips when the vendored files were built from the same lock file.
set -euo pipefail
cd "$(dirname "$0")"
out=../static/vendor
stamp="$out/.lock-sha256"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$out/uPlot.iife.min.js" ] && [ -f "$out/uPlot.min.css" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "dashboard web build: npm is missing (Debian: apt-get install npm)" >&2; exit 3; }
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
mkdir -p "$out"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE "$out/"
echo "$want" >"$stamp"
echo "dashboard web build: vendored uPlot $(node -p 'require("./node_modules/uplot/package.json").version') into static/vendor" >&2

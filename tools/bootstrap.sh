#!/usr/bin/env bash
# Install what coffee-rt needs on a Debian machine: Java 17, Maven, PostgreSQL, Redis, npm, Chromium,
# containerd, runc, the CNI plugins, iptables, ipset, buildah, mmdebstrap,
# uv, the Python environment (.venv, from uv.lock) and the dashboard's vendored chart library.
# Idempotent; a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)  # javac builds the job's SQL functions
command -v mvn >/dev/null || need+=(maven)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)  # alert rule checks and the local stack's Prometheus
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v npm >/dev/null || need+=(npm)  # vendors the dashboard's chart library
[ -x /usr/bin/chromium ] || need+=(chromium)  # the dashboard's browser tests (Playwright drives Debian's build)
# The local cluster's node (coffee-rt local up cluster) and its images, built without a Docker engine.
command -v containerd >/dev/null || need+=(containerd)
[ -x /usr/sbin/runc ] || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -x /usr/sbin/iptables ] || need+=(iptables)  # kube-proxy
[ -x /usr/sbin/ipset ] || need+=(ipset)  # kube-router's network policy firewall
command -v buildah >/dev/null || need+=(buildah)  # builds the Dockerfiles as they are
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)  # base images from Debian packages
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages: ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    exit 3
  fi
  echo "bootstrap: installing ${need[*]}" >&2
  # Our own instances of Postgres and Redis run from the project; keep the packages' services off.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install -q uv
fi
uv sync --frozen --python python3.11 -q
for project in infra operator services jobs; do  # one environment per deployable (docs/architecture.md)
  uv sync --frozen --python python3.11 -q --project "$project"
done
bash services/coffee_dashboard/web/build.sh

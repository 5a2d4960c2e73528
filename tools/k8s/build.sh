#!/usr/bin/env bash
# Build the control plane, kubelet, kube-proxy, kubectl, CoreDNS and kube-router from the Go module
# proxy into the project cache (COFFEE_RT_CACHE, default .cache/): pinned in tools/coffee_rt/k8s/versions.py
# and gomod.py, described by the go.mod/go.sum files here. A no-op when already built; prints the binaries' paths.
# After changing the pin: uv run python -m coffee_rt.k8s.gomod (rewrites go.mod and go.sum).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec uv run --frozen python -m coffee_rt.k8s.build "$@"

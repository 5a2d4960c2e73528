"""Build kube-router, the cluster's network policy controller, from the Go module proxy, once per version.

The bridge CNI forwards whatever pods send; kube-router's firewall turns NetworkPolicies into
iptables rules and ipsets (kube-network-policies needs nftables' queue, which this kernel lacks).
The binary lives in ``<cache>/k8s/kube-router/<version>/kube-router`` with a stamp of its wrapper
module (tools/k8s/kube-router), ldflags and Go version; a matching stamp means no work.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from coffee_rt.k8s import goenv
from coffee_rt.k8s.build import MIN_GO, _locked, _run_go
from coffee_rt.k8s.gomod import KUBE_ROUTER_DIR, KUBE_ROUTER_MODULE, KUBE_ROUTER_PACKAGE, KUBE_ROUTER_VERSION
from coffee_rt.paths import cache_dir

Progress = Callable[[str], None]
VERSION_PACKAGE = f"{KUBE_ROUTER_MODULE}/pkg/version"


def _no_progress(_: str) -> None:
    pass


def home(version: str = KUBE_ROUTER_VERSION, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "k8s" / "kube-router" / version


def binary_path(version: str = KUBE_ROUTER_VERSION, cache: Path | None = None) -> Path:
    return home(version, cache) / "kube-router"


def ldflags(version: str, build_date: str) -> str:
    """What kube-router's Makefile injects (``kube-router --version`` reports them)."""
    return f"-s -w -X {VERSION_PACKAGE}.Version={version} -X {VERSION_PACKAGE}.BuildDate={build_date}"


def _release_time(version: str, cache: Path | None) -> str:
    """The release's publication time from the proxy's .info: a reproducible build date."""
    escaped = "".join(f"!{c.lower()}" if c.isupper() else c for c in KUBE_ROUTER_MODULE)
    info = goenv.go_dir(cache) / "mod" / "cache" / "download" / escaped / "@v" / f"{version}.info"
    try:
        return str(json.loads(info.read_text())["Time"])
    except (FileNotFoundError, KeyError, ValueError):
        return "1970-01-01T00:00:00Z"


def _fingerprint(go_version: str, flags: str) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((KUBE_ROUTER_DIR / name).read_bytes())
    digest.update(f"\0{go_version}\0{flags}\0{KUBE_ROUTER_PACKAGE}".encode())
    return digest.hexdigest()


def ensure_built(progress: Progress = _no_progress, cache: Path | None = None) -> Path:
    """kube-router's binary, building it first when the cache lacks it or its stamp differs."""
    version = KUBE_ROUTER_VERSION
    target, stamp = binary_path(version, cache), home(version, cache) / "stamp.json"
    go = goenv.require_go(MIN_GO)
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    with _locked(target.parent.parent / f".{version}.lock"):
        _run_go(["mod", "download", f"{KUBE_ROUTER_MODULE}@{version}"], cache, "downloading kube-router",
                cwd=KUBE_ROUTER_DIR)
        flags = ldflags(version, _release_time(version, cache))
        fingerprint = _fingerprint(go_version, flags)
        try:
            built = json.loads(stamp.read_text()).get("fingerprint")
        except (FileNotFoundError, ValueError):
            built = None
        if built == fingerprint and target.is_file():
            return target
        progress(f"k8s: building kube-router {version} with {go_version} (about 4 min on 2 cores; cached afterwards)")
        started = time.monotonic()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name("kube-router.partial")
        _run_go(["build", "-mod=readonly", "-trimpath", "-ldflags", flags, "-o", str(partial), KUBE_ROUTER_PACKAGE],
                cache, f"building kube-router {version}", cwd=KUBE_ROUTER_DIR)
        partial.rename(target)
        seconds = time.monotonic() - started
        stamp.write_text(json.dumps({"fingerprint": fingerprint, "go": go_version, "seconds": round(seconds, 1),
                                     "ldflags": flags}, indent=2))
        progress(f"k8s: built kube-router in {seconds:.0f} s into {target}")
    return target

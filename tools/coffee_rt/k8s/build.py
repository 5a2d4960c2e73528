"""Build the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), kwok, a
node's kubelet, kube-proxy and kubectl, and CoreDNS once into the project cache.

One ``go build`` compiles them all so the packages they share (client-go, apiserver, grpc, etcd
client) compile once. The result lives in ``<cache>/k8s/<version>/bin`` with a stamp of what was
built (wrapper go.mod/go.sum, ldflags, Go version); a matching stamp means no work, anything else
rebuilds. CoreDNS is a module of its own (tools/k8s/coredns), built by a second ``go build``;
kube-router (coffee_rt.k8s.kube_router) is a third, which ``main`` builds as well.
Run ``python -m coffee_rt.k8s.build`` (or tools/k8s/build.sh) to build ahead of time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coffee_rt.errors import PrerequisiteError
from coffee_rt.k8s import goenv
from coffee_rt.k8s.gomod import COREDNS_DIR, KWOK_MODULE, TOOLS, WRAPPER_DIR
from coffee_rt.k8s.versions import KUBERNETES_VERSION, parse_release
from coffee_rt.paths import cache_dir

Progress = Callable[[str], None]
MIN_GO = (1, 26)  # k8s.io/kubernetes v1.37's go directive
# kwok's behaviour is data: the Stage objects kwokctl uses by default (nodes turn Ready and keep a
# lease, pods turn Running, finish, and go away when deleted), shipped in its module.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def _no_progress(_: str) -> None:
    pass


@dataclass(frozen=True)
class Binaries:
    """Paths of the built control-plane binaries."""

    bin_dir: Path
    version: str

    def __getitem__(self, name: str) -> Path:
        if name not in TOOLS and name != "coredns":
            raise KeyError(f"no such control-plane binary {name!r}; built: {', '.join(TOOLS)}")
        return self.bin_dir / name

    @property
    def etcd(self) -> Path:
        return self["etcd"]

    @property
    def kube_apiserver(self) -> Path:
        return self["kube-apiserver"]

    @property
    def kube_controller_manager(self) -> Path:
        return self["kube-controller-manager"]

    @property
    def kube_scheduler(self) -> Path:
        return self["kube-scheduler"]

    @property
    def kwok(self) -> Path:
        return self["kwok"]

    @property
    def coredns(self) -> Path:
        return self["coredns"]

    @property
    def kwok_stages(self) -> Path:
        """kwok's --config: the Stage objects, copied from the kwok module at build time."""
        return self.bin_dir / "kwok-stages.yaml"

    def complete(self) -> bool:
        return all(self[name].is_file() for name in TOOLS) and self.kwok_stages.is_file()


def version_ldflags(version: str, build_date: str) -> list[str]:
    """``-X`` flags that make the binaries report ``version`` like an official build would.

    Built from a module zip, there is no git tree: the tree state is ``archive``, as Kubernetes'
    own hack/lib/version.sh says for source tarballs, and the commit is left empty.
    """
    minor, _ = parse_release(version)
    values = {
        "gitVersion": version,
        "gitMajor": "1",
        "gitMinor": str(minor),
        "gitTreeState": "archive",
        "gitCommit": "",
        "buildDate": build_date,
    }
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return flags


def version_home(version: str = KUBERNETES_VERSION, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "k8s" / version


def _module_time(version: str, cache: Path | None) -> str:
    """The release's publication time from the module proxy's .info (a reproducible build date)."""
    info = goenv.go_dir(cache) / "mod" / "cache" / "download" / "k8s.io" / "kubernetes" / "@v" / f"{version}.info"
    try:
        return str(json.loads(info.read_text())["Time"])
    except (FileNotFoundError, KeyError, ValueError):
        return "1970-01-01T00:00:00Z"


def _fingerprint(go_version: str, ldflags: str) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((WRAPPER_DIR / name).read_bytes())
    digest.update(f"\0{go_version}\0{ldflags}\0{sorted(TOOLS.items())}\0{KWOK_STAGES}".encode())
    return digest.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per cache (a CLI `up` and a test session may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_go(args: list[str], cache: Path | None, what: str, cwd: Path = WRAPPER_DIR) -> None:
    result = subprocess.run([goenv.go_binary(), *args], cwd=cwd, env=goenv.env(cache),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PrerequisiteError(f"{what} failed (go {' '.join(args[:3])} ... in {cwd}):\n"
                                f"{result.stderr[-4000:]}")


def ensure_built(progress: Progress = _no_progress, cache: Path | None = None,
                 version: str = KUBERNETES_VERSION) -> Binaries:
    """The binaries for ``version``, building them first if the cache lacks them or is stale."""
    home = version_home(version, cache)
    binaries = Binaries(home / "bin", version)
    stamp = home / "stamp.json"
    go = goenv.require_go(MIN_GO)
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    with _locked(home.parent / f".{version}.lock"):
        # Its .info (the build date) must be in GOMODCACHE before the ldflags are known.
        _run_go(["mod", "download", f"k8s.io/kubernetes@{version}"], cache, "downloading k8s.io/kubernetes")
        ldflags = " ".join(["-s", "-w", *version_ldflags(version, _module_time(version, cache))])
        fingerprint = _fingerprint(go_version, ldflags)
        try:
            built = json.loads(stamp.read_text()).get("fingerprint")
        except (FileNotFoundError, ValueError):
            built = None
        if built != fingerprint or not binaries.complete():
            _build_kubernetes(binaries, stamp, fingerprint, go_version, ldflags, progress, cache)
        _ensure_coredns(binaries, go_version, progress, cache)
    return binaries


def _build_kubernetes(binaries: Binaries, stamp: Path, fingerprint: str, go_version: str, ldflags: str,
                      progress: Progress, cache: Path | None) -> None:
    version, home = binaries.version, stamp.parent
    progress(f"k8s: building {', '.join(TOOLS)} {version} with {go_version} "
             "(from an empty cache about 12 min on 2 cores; cached afterwards)")
    started = time.monotonic()
    staging = home / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # One invocation for all: shared packages compile once and both cores stay busy.
    _run_go(["build", "-mod=readonly", "-trimpath", "-ldflags", ldflags, "-o", str(staging) + "/",
             *TOOLS.values()], cache, f"building Kubernetes {version}")
    for name, package in TOOLS.items():
        produced = staging / _binary_name(package)
        if produced != staging / name:
            produced.rename(staging / name)
    _write_kwok_stages(staging / binaries.kwok_stages.name, cache)
    shutil.rmtree(binaries.bin_dir, ignore_errors=True)
    staging.rename(binaries.bin_dir)
    seconds = time.monotonic() - started
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "go": go_version, "seconds": round(seconds, 1),
                                 "ldflags": ldflags}, indent=2))
    progress(f"k8s: built in {seconds:.0f} s into {binaries.bin_dir}")


def _ensure_coredns(binaries: Binaries, go_version: str, progress: Progress, cache: Path | None) -> None:
    """CoreDNS, from its own module and with its own stamp: a CoreDNS bump relinks nothing else."""
    digest = hashlib.sha256(go_version.encode())
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((COREDNS_DIR / name).read_bytes())
    stamp = binaries.bin_dir / "coredns.stamp"
    if binaries.coredns.is_file() and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    progress("k8s: building CoreDNS")
    started = time.monotonic()
    partial = binaries.bin_dir / "coredns.partial"
    _run_go(["build", "-mod=readonly", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
            cache, "building CoreDNS", cwd=COREDNS_DIR)
    partial.rename(binaries.coredns)
    stamp.write_text(digest.hexdigest())
    progress(f"k8s: built CoreDNS in {time.monotonic() - started:.0f} s")


def _write_kwok_stages(target: Path, cache: Path | None) -> None:
    result = subprocess.run([goenv.go_binary(), "list", "-m", "-json", KWOK_MODULE], cwd=WRAPPER_DIR,
                            env=goenv.env(cache), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PrerequisiteError(f"cannot locate the {KWOK_MODULE} module: {result.stderr[-2000:]}")
    module_dir = Path(json.loads(result.stdout)["Dir"])
    docs = [(module_dir / stage).read_text().strip() for stage in KWOK_STAGES]
    target.write_text("\n---\n".join(docs) + "\n")


def _binary_name(package: str) -> str:
    """What ``go build -o dir/`` names a package's binary: the last element, skipping a /vN suffix."""
    parts = package.split("/")
    last = parts[-1]
    if len(parts) > 1 and last.startswith("v") and last[1:].isdigit():
        return parts[-2]
    return last


def main() -> int:
    from coffee_rt.k8s import kube_router  # it builds with this module's helpers: imported here, not above

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    binaries = ensure_built(progress=progress)
    for name in (*TOOLS, "coredns"):
        print(binaries[name])
    print(kube_router.ensure_built(progress))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

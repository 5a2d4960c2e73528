"""Build the pulumi CLI and the Kubernetes resource provider once into the project cache.

Nothing Pulumi publishes as a binary is reachable here, so both are compiled from the Go module
proxy through the wrapper modules of ``coffee_rt.pulumi.gomod``. Each lands in
``<cache>/pulumi/<cli|kubernetes>/<version>/bin`` with a stamp of what was built (wrapper
go.mod/go.sum, ldflags, Go version); a matching stamp means no work, anything else rebuilds. GOCACHE
is shared with the Kubernetes build (``coffee_rt.k8s.goenv``), so a rebuild recompiles only what changed.

The provider's ``main.go`` embeds ``schema-embed.json`` and ``terraform-mapping-embed.json``, which
its release process generates and its module does not ship. They are made here from the module's
``schema.json`` and ``terraform-mapping.json`` (what its generate.go does) and handed to the compiler
with ``go build -overlay``. Go refuses overlays inside the module cache, so the main package built is
the wrapper's copy of the provider's main.go (tools/pulumi/kubernetes/main.go) and the files are
overlaid beside it; nothing is written into the repository or the read-only module cache.

The provider is then installed as a plugin into a PULUMI_HOME of its own under the cache (the engine
finds it by name and version there and never tries to download one). Run
``python -m coffee_rt.pulumi.build`` to build ahead of time (cold: the CLI about 17 min, the
provider about 30 min on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from coffee_rt.errors import PrerequisiteError
from coffee_rt.k8s import goenv
from coffee_rt.k8s.build import _locked
from coffee_rt.paths import cache_dir
from coffee_rt.pulumi import versions as v
from coffee_rt.pulumi.gomod import CLI, PROVIDER, Wrapper

Progress = Callable[[str], None]
MIN_GO = (1, 26)  # pulumi pkg/v3 v3.276.0's go directive (1.26.6)
PROVIDER_BINARY = "pulumi-resource-kubernetes"
EMBEDS = {"schema-embed.json": "schema.json", "terraform-mapping-embed.json": "terraform-mapping.json"}


def _no_progress(_: str) -> None:
    pass


@dataclass(frozen=True)
class Toolchain:
    """The built CLI, the provider binary, and the PULUMI_HOME the provider is installed in."""

    cache: Path

    @property
    def root(self) -> Path:
        """The CLI's root (``root/bin/pulumi``): what ``pulumi.automation.PulumiCommand`` takes."""
        return self.cache / "pulumi" / "cli" / v.PULUMI_VERSION

    @property
    def pulumi(self) -> Path:
        return self.root / "bin" / "pulumi"

    @property
    def provider(self) -> Path:
        return self.cache / "pulumi" / "kubernetes" / v.KUBERNETES_PROVIDER_VERSION / "bin" / PROVIDER_BINARY

    @property
    def home(self) -> Path:
        return self.cache / "pulumi" / "home"

    @property
    def installed_plugin(self) -> Path:
        return self.home / "plugins" / f"resource-kubernetes-{v.KUBERNETES_PROVIDER_VERSION}" / PROVIDER_BINARY

    def env(self) -> dict[str, str]:
        """What every pulumi command here runs with: our home and plugins only, nothing fetched."""
        return {
            "PULUMI_HOME": str(self.home),
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",  # no plugin from PATH, only PULUMI_HOME's
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",  # nothing could be downloaded anyway
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }

    def complete(self) -> bool:
        return self.pulumi.is_file() and self.installed_plugin.is_file()


def built(cache: Path | None = None) -> Toolchain | None:
    """The toolchain if it is already built and installed (no building, no Go needed); else None."""
    toolchain = Toolchain(cache or cache_dir())
    return toolchain if toolchain.complete() else None


def ldflags(wrapper: Wrapper) -> str:
    """``-s -w`` and the version variable, so the binaries report the release they were built from."""
    if wrapper is CLI:
        return f"-s -w -X {v.PULUMI_VERSION_VAR}={v.PULUMI_VERSION}"
    return f"-s -w -X {v.KUBERNETES_PROVIDER_VERSION_VAR}={v.KUBERNETES_PROVIDER_VERSION.removeprefix('v')}"


def embedded_schema(schema: str, version: str) -> str:
    """The provider's schema.json with its version set, compact: what its generate.go writes.

    The engine and the SDKs read the package version from the schema the provider serves.
    """
    spec = json.loads(schema)
    spec["version"] = version
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)


def compact_json(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def overlay(package_dir: Path, generated: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """``go build -overlay`` content: each embed file name in the package's folder -> our file."""
    return {"Replace": {str(package_dir / name): str(path) for name, path in sorted(generated.items())}}


def fingerprint(wrapper: Wrapper, go_version: str, flags: str) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((wrapper.directory / name).read_bytes())
    if (wrapper.directory / "main.go").is_file():
        digest.update((wrapper.directory / "main.go").read_bytes())
    digest.update(f"\0{go_version}\0{flags}\0{wrapper.package}\0{sorted(EMBEDS.items())}".encode())
    return digest.hexdigest()


def _run(args: list[str], what: str, cwd: Path, env: Mapping[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PrerequisiteError(f"{what} failed ({' '.join(args[:4])} ... in {cwd}):\n{result.stderr[-4000:]}")
    return result.stdout


def _stamped(stamp: Path) -> str | None:
    try:
        return str(json.loads(stamp.read_text())["fingerprint"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def ensure_built(progress: Progress = _no_progress, cache: Path | None = None) -> Toolchain:
    """The CLI and the installed provider, building either first if the cache lacks it or is stale."""
    toolchain = Toolchain(cache or cache_dir())
    go = goenv.require_go(MIN_GO)
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    with _locked(toolchain.cache / "pulumi" / ".build.lock"):
        _ensure_binary(CLI, toolchain.pulumi, go_version, progress, toolchain.cache)
        provider_print = _ensure_binary(PROVIDER, toolchain.provider, go_version, progress, toolchain.cache)
        _ensure_plugin(toolchain, provider_print, progress)
    return toolchain


def _ensure_binary(wrapper: Wrapper, target: Path, go_version: str, progress: Progress, cache: Path) -> str:
    """Build ``wrapper``'s package into ``target`` unless its stamp matches; returns the fingerprint."""
    flags = ldflags(wrapper)
    print_ = fingerprint(wrapper, go_version, flags)
    home = target.parent.parent
    stamp = home / "stamp.json"
    if _stamped(stamp) == print_ and target.is_file():
        return print_
    version = v.PULUMI_VERSION if wrapper is CLI else v.KUBERNETES_PROVIDER_VERSION
    cold = "17" if wrapper is CLI else "30"
    progress(f"pulumi: building {target.name} {version} with {go_version} "
             f"(from an empty cache about {cold} min on 2 cores; cached afterwards)")
    started = time.monotonic()
    env = goenv.env(cache)
    args = [goenv.go_binary(), "build", "-mod=readonly", "-trimpath", "-ldflags", flags]
    if wrapper is PROVIDER:
        args += ["-overlay", str(_write_embeds(home / "embed", env))]
    staging = home / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # The provider's main package is the wrapper's own copy of it (tools/pulumi/kubernetes/main.go).
    package = "." if wrapper is PROVIDER else wrapper.package
    _run([*args, "-o", str(staging / target.name), package], f"building {target.name} {version}",
         wrapper.directory, env)
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    seconds = time.monotonic() - started
    stamp.write_text(json.dumps({"fingerprint": print_, "go": go_version, "seconds": round(seconds, 1),
                                 "ldflags": flags, "bytes": target.stat().st_size}, indent=2))
    progress(f"pulumi: built {target.name} in {seconds:.0f} s ({target.stat().st_size / 1e6:.0f} MB)")
    return print_


def _write_embeds(folder: Path, env: Mapping[str, str]) -> Path:
    """Generate the provider's embed files from its module and return the overlay file naming them."""
    # -e: the package does not load without the very files made here (its go:embed names them).
    out = _run([goenv.go_binary(), "list", "-e", "-f", "{{.Dir}}", PROVIDER.package],
               "locating the provider's package", PROVIDER.directory, env)
    package_dir = Path(out.strip())
    folder.mkdir(parents=True, exist_ok=True)
    version = v.KUBERNETES_PROVIDER_VERSION.removeprefix("v")
    generated: dict[str, Path] = {}
    for embed, source in EMBEDS.items():
        text = (package_dir / source).read_text()
        content = embedded_schema(text, version) if embed == "schema-embed.json" else compact_json(text)
        (folder / embed).write_text(content)
        generated[embed] = folder / embed
    overlay_file = folder / "overlay.json"
    # Go refuses overlays inside GOMODCACHE: the files go beside the wrapper's copy of main.go.
    overlay_file.write_text(json.dumps(overlay(PROVIDER.directory, generated), indent=2))
    return overlay_file


def _ensure_plugin(toolchain: Toolchain, provider_print: str, progress: Progress) -> None:
    """``pulumi plugin install`` the built provider into our PULUMI_HOME (again after a rebuild)."""
    stamp = toolchain.installed_plugin.parent.parent / f".coffee-rt-kubernetes-{v.KUBERNETES_PROVIDER_VERSION}"
    if toolchain.installed_plugin.is_file() and stamp.is_file() and stamp.read_text() == provider_print:
        return
    progress(f"pulumi: installing the kubernetes plugin {v.KUBERNETES_PROVIDER_VERSION} into {toolchain.home}")
    toolchain.home.mkdir(parents=True, exist_ok=True)
    _run([str(toolchain.pulumi), "plugin", "install", "resource", "kubernetes", v.KUBERNETES_PROVIDER_VERSION,
          "--file", str(toolchain.provider), "--reinstall"], "installing the kubernetes plugin",
         toolchain.home, {**goenv.env(toolchain.cache), **toolchain.env()})
    stamp.write_text(provider_print)


def main() -> int:
    toolchain = ensure_built(progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(toolchain.pulumi)
    print(toolchain.installed_plugin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The wrapper go.mod: staging replaces derived from Kubernetes' own go.mod, and the pin kept in step."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from coffee_rt.k8s import goenv
from coffee_rt.k8s.build import _binary_name, version_ldflags
from coffee_rt.k8s.gomod import TOOLS, WRAPPER_DIR, render, staging_replaces
from coffee_rt.k8s.versions import KUBERNETES_VERSION, parse_release, staging_version


def _modfile(*replaces: tuple[str, str, str]) -> dict[str, Any]:
    return {"Replace": [{"Old": {"Path": old}, "New": {"Path": new, "Version": version}}
                        for old, new, version in replaces]}


def test_staging_version_maps_minor_and_patch() -> None:
    assert staging_version("v1.37.2") == "v0.37.2"
    assert staging_version("v1.9.10") == "v0.9.10"
    assert parse_release("v1.34.0") == (34, 0)


@pytest.mark.parametrize("bad", ["1.37.2", "v1.37", "v1.37.2-rc.0", "v2.0.0", "latest", ""])
def test_non_release_versions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes release version"):
        staging_version(bad)


def test_staging_replaces_come_from_the_modfile_sorted() -> None:
    modfile = _modfile(
        ("k8s.io/client-go", "./staging/src/k8s.io/client-go", ""),
        ("k8s.io/api", "./staging/src/k8s.io/api", ""),
        ("github.com/some/fork", "github.com/other/fork", "v1.2.3"),  # a module replace: not ours to repeat
    )
    assert staging_replaces(modfile, "v1.37.2") == {"k8s.io/api": "v0.37.2", "k8s.io/client-go": "v0.37.2"}


def test_a_local_replace_outside_staging_is_an_error() -> None:
    modfile = _modfile(("k8s.io/api", "./staging/src/k8s.io/api", ""), ("example.com/x", "./third_party/x", ""))
    with pytest.raises(ValueError, match=r"local replace example.com/x => ./third_party/x"):
        staging_replaces(modfile, "v1.37.2")


def test_a_staging_replace_pointing_elsewhere_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not point at its own folder"):
        staging_replaces(_modfile(("k8s.io/api", "./staging/src/k8s.io/apimachinery", "")), "v1.37.2")


def test_no_staging_replaces_is_an_error() -> None:
    with pytest.raises(ValueError, match="no staging replaces found"):
        staging_replaces({"Replace": None}, "v1.37.2")


def test_render_writes_tools_require_and_aligned_replaces() -> None:
    text = render("v1.37.2", "1.26.0", [("default", "go1.26")], {"k8s.io/api": "v0.37.2", "k8s.io/kms": "v0.37.2"},
                  ["k8s.io/kubernetes/cmd/kube-apiserver"], {"k8s.io/kubernetes": "v1.37.2", "x.io/y": "v0.1.0"})
    body = text.split("\n", 2)[2]
    assert body == (
        "module coffee-rt.dev/tools/k8s\n\ngo 1.26.0\n\ngodebug default=go1.26\n\n"
        "tool (\n\tk8s.io/kubernetes/cmd/kube-apiserver\n)\n\n"
        "require (\n\tk8s.io/kubernetes v1.37.2\n\tx.io/y v0.1.0\n)\n\n"
        "replace (\n\tk8s.io/api => k8s.io/api v0.37.2\n\tk8s.io/kms => k8s.io/kms v0.37.2\n)\n"
    )


def test_committed_go_mod_is_generated_for_the_pinned_version() -> None:
    """tools/k8s/go.mod must match versions.KUBERNETES_VERSION (regenerate with python -m coffee_rt.k8s.gomod)."""
    result = subprocess.run([goenv.go_binary(), "mod", "edit", "-json", str(WRAPPER_DIR / "go.mod")], env=goenv.env(),
                            capture_output=True, text=True, check=True)
    modfile = json.loads(result.stdout)
    requires = {r["Path"]: r["Version"] for r in modfile["Require"]}
    assert requires["k8s.io/kubernetes"] == KUBERNETES_VERSION
    replaces = {r["Old"]["Path"]: (r["New"]["Path"], r["New"].get("Version")) for r in modfile["Replace"]}
    assert replaces, "no replace directives"
    assert all(old.startswith("k8s.io/") and new == (old, staging_version(KUBERNETES_VERSION))
               for old, new in replaces.items())
    # Every staging module Kubernetes requires is replaced (they are all at v0.0.0 otherwise).
    assert {p for p, v in requires.items() if p.startswith("k8s.io/") and v == "v0.0.0"} <= set(replaces)
    assert sorted(t["Path"] for t in modfile["Tool"]) == sorted(TOOLS.values())
    assert (WRAPPER_DIR / "go.sum").read_text().count(f"k8s.io/kubernetes {KUBERNETES_VERSION} h1:") == 1


def test_version_ldflags_set_both_version_packages() -> None:
    flags = version_ldflags("v1.37.2", "2026-10-27T12:01:04Z")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.37.2" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=37" in flags
        assert f"-X {package}.gitTreeState=archive" in flags
        assert f"-X {package}.buildDate=2026-10-27T12:01:04Z" in flags
    assert len(flags) == 12


@pytest.mark.parametrize(("package", "binary"), [
    ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
    ("go.etcd.io/etcd/server/v3", "server"),
    ("example.com/v2tool", "v2tool"),
])
def test_binary_name_is_what_go_build_o_dir_writes(package: str, binary: str) -> None:
    assert _binary_name(package) == binary

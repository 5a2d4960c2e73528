"""kube-router's wrapper module: the release and kube-router's own versions of the modules tidy would float."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from coffee_rt.k8s import goenv, kube_router
from coffee_rt.k8s.gomod import (
    KUBE_ROUTER_DIR,
    KUBE_ROUTER_MODULE,
    KUBE_ROUTER_PACKAGE,
    KUBE_ROUTER_PINS,
    KUBE_ROUTER_VERSION,
    render_kube_router,
)


def _modfile() -> dict[str, Any]:
    result = subprocess.run([goenv.go_binary(), "mod", "edit", "-json", str(KUBE_ROUTER_DIR / "go.mod")],
                            env=goenv.env(), capture_output=True, text=True, check=True)
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_committed_go_mod_requires_the_pinned_release_and_pins() -> None:
    """tools/k8s/kube-router/go.mod matches gomod's pins (regenerate with python -m coffee_rt.k8s.gomod)."""
    modfile = _modfile()
    requires = {r["Path"]: r["Version"] for r in modfile["Require"]}
    assert requires[KUBE_ROUTER_MODULE] == "v2.1.0" == KUBE_ROUTER_VERSION
    for path, version in KUBE_ROUTER_PINS.items():
        assert requires[path] == version
    assert [t["Path"] for t in modfile["Tool"]] == ["github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"]
    go_sum = (KUBE_ROUTER_DIR / "go.sum").read_text()
    assert go_sum.count(f"{KUBE_ROUTER_MODULE} {KUBE_ROUTER_VERSION} h1:") == 1


def test_the_build_keeps_kube_routers_released_grpc_and_client_go() -> None:
    """Tidy took no newer grpc or client-go than kube-router v2.1.0's go.mod names."""
    requires = {r["Path"]: r["Version"] for r in _modfile()["Require"]}
    assert requires["google.golang.org/grpc"] == "v1.62.0"
    assert requires["k8s.io/client-go"] == "v0.29.2"
    assert requires["golang.org/x/net"] == "v0.21.0"


def test_render_kube_router_before_tidy() -> None:
    body = render_kube_router().split("\n", 1)[1]
    assert body == (
        "module coffee-rt.dev/tools/k8s/kube-router\n\ngo 1.26.0\n\n"
        f"tool {KUBE_ROUTER_PACKAGE}\n\n"
        "require (\n\tgithub.com/cloudnativelabs/kube-router/v2 v2.1.0\n"
        "\tgithub.com/Azure/go-ansiterm v0.0.0-20210617225240-d185dfc1b5a1\n"
        "\tgithub.com/cenkalti/backoff/v4 v4.2.1\n"
        "\tgo.opentelemetry.io/otel/exporters/otlp/otlptrace v1.24.0\n"
        "\tgo.opentelemetry.io/proto/otlp v1.1.0\n)\n"
    )


def test_ldflags_set_the_version_kube_router_reports() -> None:
    assert kube_router.ldflags("v2.1.0", "2024-03-02T21:45:54Z") == (
        "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0"
        " -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=2024-03-02T21:45:54Z")


def test_binary_is_cached_by_version(tmp_path: Path) -> None:
    cache = tmp_path
    assert kube_router.binary_path("v2.1.0", cache) == cache / "k8s" / "kube-router" / "v2.1.0" / "kube-router"

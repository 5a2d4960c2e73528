"""Fixtures for tests against the real control plane: kubectl as admin, the shipped manifests installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.paths import REPO_ROOT

MANIFESTS = REPO_ROOT / "operator" / "manifests"
CRD_NAME = "coffeepipelines.coffee-rt.dev"
NAMESPACE = "coffee-rt"


@pytest.fixture(scope="session")
def kubectl(k8s: Path) -> Kubectl:
    return Kubectl(k8s)


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> str:
    """The CoffeePipeline CRD, installed with `kubectl apply` and established."""
    kubectl.apply(MANIFESTS / "crd.yaml")
    kubectl.wait_established(CRD_NAME)
    return CRD_NAME


@pytest.fixture(scope="session")
def namespace(kubectl: Kubectl) -> str:
    """The shipped namespace the operator and its pipelines live in."""
    kubectl.apply(MANIFESTS / "namespace.yaml")
    return NAMESPACE


# A fresh machine compiles the control plane (about 12 min on 2 cores) inside the first k8s
# test's setup; pytest's default per-test timeout would cut that short.
BUILD_TIMEOUT = 2700


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/k8s/" in str(item.path):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))

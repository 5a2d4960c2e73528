"""Fixtures for tests on the real one-node cluster: the cluster (one start for the module), the
project's images built from their Dockerfiles and imported into the node, and the servers its pods
talk to (Kafka, Redis) listening on the node IP, behind Services named as in production."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import redis

from coffee_rt.cluster.images import IMAGES, build_all
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.cluster import Cluster
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack

KEEP = os.environ.get("COFFEE_RT_TEST_KEEP") == "1"
# A fresh machine compiles the node's binaries and builds the images inside the first test's setup.
BUILD_TIMEOUT = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/cluster/" in str(item.path):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="a real node needs root: containerd, a bridge, iptables"))


def _say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@pytest.fixture(scope="module")
def cluster(local_stack: LocalStack) -> Iterator[Cluster]:
    local_stack.up(["cluster"])
    component = local_stack["cluster"]
    assert isinstance(component, Cluster)
    yield component
    if not KEEP:
        local_stack.down(["cluster"])


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    """The kubectl built with the cluster, as its admin."""
    return Kubectl(cluster.kubeconfig, binary=cluster.kubectl_binary, timeout=180.0)


@pytest.fixture(scope="module")
def images(cluster: Cluster) -> dict[str, str]:
    """image name -> full reference of the images the hand-made deployment runs (the operator's, ingest's
    and the auditor's), each built from its Dockerfile and present in the node. The Pulumi deployment test
    builds and imports every image its own way (coffee-rt deploy)."""
    names = ["operator", "order-ingest", "auditor"]
    built = build_all(names, cache=cluster.settings.cache_dir, progress=_say)
    cluster.import_images([b.reference for b in built], _say)
    return {name: IMAGES[name].reference(name) for name in names}


@pytest.fixture(scope="module")
def pod_servers(local_stack: LocalStack, cluster: Cluster) -> Iterator[LocalSettings]:
    """Kafka and Redis on the node IP (the test stack's ports), where pods can reach them."""
    # Their state beside the test stack's, not in it: the test stack's state is wiped at a session's
    # start, and these pid files must survive to stop what a crashed session left running.
    state = local_stack.settings.state_dir
    settings = local_stack.settings.model_copy(update={
        "host": cluster.node_ip, "state_dir": state.with_name(f"{state.name}-pod-servers")})
    stack = LocalStack(settings, progress=_say)
    # Redis's protected mode refuses every address but loopback to a server without a password:
    # this one, for pods, has none and turns it off.
    redis_server = ManagedProcess(
        name="pod-redis", argv=["redis-server", "--bind", cluster.node_ip, "--port", str(settings.redis_port),
                                "--protected-mode", "no", "--save", "", "--appendonly", "no"],
        log_file=settings.state_dir / "logs" / "pod-redis.log", pid_file=settings.state_dir / "run" / "pod-redis.pid")
    stack.down(["kafka"])
    redis_server.stop()
    try:
        redis_server.start()
        stack.up(["kafka"])
        # No password: the pods' Redis URL (test_cluster) has none, unlike the stack's own Redis.
        client = redis.Redis(host=cluster.node_ip, port=settings.redis_port, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 60
        while not _pings(client) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _pings(client), redis_server.tail()
        yield settings
    finally:
        if not KEEP:
            stack.down(["kafka"])
            redis_server.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False

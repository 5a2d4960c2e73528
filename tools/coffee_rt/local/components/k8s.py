"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok simulating one node.

The binaries are built from the Go module proxy (``coffee_rt.k8s.build``) on first use. The API,
admission, RBAC, CRD validation, controllers and scheduler are all real; only the kubelet is
simulated (kwok), so Deployments get ReplicaSets, Pods get scheduled onto the node and report
Running, but no container runs. ``kubectl --kubeconfig <home>/kubeconfig`` is an admin (token).
"""

from __future__ import annotations

import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from coffee_rt.errors import StartupError
from coffee_rt.k8s import kubeconfig
from coffee_rt.k8s.build import Binaries, ensure_built, version_home
from coffee_rt.k8s.pki import ADMIN_USER, CLIENTS, SERVICE_CIDR, Pki, ensure_pki
from coffee_rt.k8s.versions import KUBERNETES_VERSION
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess
from coffee_rt.paths import TOOLS_DIR

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
POD_CIDR = "10.1.0.0/16"  # kwok's made-up pod IPs; apart from the service range
NODE_NAME = "coffee-rt-node"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


def node_manifest(name: str = NODE_NAME) -> dict[str, Any]:
    """The simulated node: kwok manages nodes carrying its annotation; big enough for any test."""
    resources = {"cpu": "32", "memory": "64Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64"},
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


class Kubernetes(Component):
    name = "k8s"
    # A cold first start also compiles the binaries; that happens in prepare(), outside this timeout.
    start_timeout = 120.0
    node_ready_timeout = 60.0

    @property
    def pki(self) -> Pki:
        return Pki(self.home / "pki")

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig for kubectl and tests."""
        return self.home / "kubeconfig"

    def _component_kubeconfig(self, component: str) -> Path:
        return self.home / f"{component}.kubeconfig"

    @property
    def _binaries(self) -> Binaries:
        return Binaries(version_home(KUBERNETES_VERSION, self.settings.cache_dir) / "bin", KUBERNETES_VERSION)

    def ports(self) -> list[int]:
        s = self.settings
        return [s.etcd_port, s.etcd_peer_port, s.k8s_apiserver_port]

    def address(self) -> str:
        return self.settings.k8s_apiserver_url

    def prepare(self, progress: Progress) -> None:
        ensure_built(progress, cache=self.settings.cache_dir)
        (self.home / "etcd").mkdir(parents=True, exist_ok=True)
        (self.home / "etcd").chmod(0o700)  # etcd warns about (and will one day refuse) a readable data dir
        pki = ensure_pki(self.pki.root, self.settings.host)
        # Rewritten on every start: the port may have changed since the PKI was made.
        kubeconfig.write(self.kubeconfig, kubeconfig.render(self.address(), pki.ca_cert, ADMIN_USER,
                                                            token=pki.admin_token()))
        for component, (user, _) in CLIENTS.items():
            kubeconfig.write(self._component_kubeconfig(component), kubeconfig.render(
                self.address(), pki.ca_cert, user,
                client_cert=pki.client_cert(component), client_key=pki.client_key(component)))

    def _after_api(self, argv: list[str]) -> list[str]:
        """Launch ``argv`` once the API server is ready (the controller-manager quits if it is not
        healthy 10 s after its start, which a cold API server on 2 cores can miss)."""
        # PYTHONPATH: the interpreter may be an environment without coffee_rt installed (infra's runs
        # the tests that start a control plane); the module needs only httpx and the standard library.
        return ["/usr/bin/env", f"PYTHONPATH={TOOLS_DIR}", sys.executable, "-m", "coffee_rt.k8s.await_ready",
                self.address(), str(self.pki.ca_cert), "--", *argv]

    def processes(self) -> list[ManagedProcess]:
        s, pki, bins = self.settings, self.pki, self._binaries
        etcd_url = f"http://{s.host}:{s.etcd_port}"
        peer_url = f"http://{s.host}:{s.etcd_peer_port}"
        etcd = [
            str(bins.etcd),
            "--name", "coffee-rt",
            "--data-dir", str(self.home / "etcd"),
            "--listen-client-urls", etcd_url,
            "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"coffee-rt={peer_url}",
            "--listen-metrics-urls", "",
            "--log-level", "warn",
            # A throwaway single-member store on loopback: durability across power loss is not worth
            # an fsync per write on a 2-core CI machine.
            "--unsafe-no-fsync",
        ]
        apiserver = [
            str(bins.kube_apiserver),
            "--etcd-servers", etcd_url,
            "--bind-address", s.host,
            "--advertise-address", s.host,
            "--secure-port", str(s.k8s_apiserver_port),
            "--tls-cert-file", str(pki.apiserver_cert),
            "--tls-private-key-file", str(pki.apiserver_key),
            "--client-ca-file", str(pki.ca_cert),
            "--token-auth-file", str(pki.token_file),
            "--authorization-mode", "RBAC",
            # Stricter than the default: setting blockOwnerDeletion needs update on <owner>/finalizers,
            # as on clusters that enable it; an operator whose RBAC passes here passes there.
            "--enable-admission-plugins", "OwnerReferencesPermissionEnforcement",
            "--service-account-issuer", SERVICE_ACCOUNT_ISSUER,
            "--service-account-key-file", str(pki.sa_pub),
            "--service-account-signing-key-file", str(pki.sa_key),
            "--service-cluster-ip-range", SERVICE_CIDR,
            # A loopback address is not a valid Endpoints address for the `kubernetes` Service.
            "--endpoint-reconciler-type", "none",
            "--profiling=false",
            "--v", "1",
        ]
        kcm_config = str(self._component_kubeconfig("controller-manager"))
        controller_manager = self._after_api([
            str(bins.kube_controller_manager),
            "--kubeconfig", kcm_config,
            "--authentication-kubeconfig", kcm_config,
            "--authorization-kubeconfig", kcm_config,
            # Each controller acts as its own service account, so RBAC applies to them as in a real cluster.
            "--use-service-account-credentials",
            "--service-account-private-key-file", str(pki.sa_key),
            "--root-ca-file", str(pki.ca_cert),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--leader-elect=false",
            "--secure-port", "0",  # no metrics/health server: nothing to collide with other stacks
            "--profiling=false",
            # Beta since 1.36: the ReplicaSet controller refuses to sync while its cache is older
            # than its own last write, and each refusal doubles the retry delay. On a loaded
            # 2-core machine the cache lags, and a ReplicaSet's status once went unwritten for
            # over a minute (a Deployment with 3 running pods reported 0 available in CI).
            "--feature-gates", "StaleControllerConsistencyReplicaSet=false",
            "--v", "1",
        ])
        scheduler_config = str(self._component_kubeconfig("scheduler"))
        scheduler = self._after_api([
            str(bins.kube_scheduler),
            "--kubeconfig", scheduler_config,
            "--authentication-kubeconfig", scheduler_config,
            "--authorization-kubeconfig", scheduler_config,
            "--leader-elect=false",
            "--secure-port", "0",
            "--profiling=false",
            "--v", "1",
        ])
        kwok = self._after_api([
            str(bins.kwok),
            "--kubeconfig", str(self._component_kubeconfig("kwok")),
            "--config", str(bins.kwok_stages),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector", f"{KWOK_ANNOTATION}=fake",
            "--cidr", POD_CIDR,
            "--node-ip", s.host,
        ])
        return [
            self.process("etcd", etcd),
            self.process("apiserver", apiserver),
            self.process("controller-manager", controller_manager),
            self.process("scheduler", scheduler),
            self.process("kwok", kwok),
        ]

    def _client(self) -> httpx.Client:
        pki = self.pki
        return httpx.Client(base_url=self.address(), verify=ssl.create_default_context(cafile=str(pki.ca_cert)),
                            headers={"Authorization": f"Bearer {pki.admin_token()}"}, timeout=5.0)

    def health(self) -> Health:
        """The API server's /readyz (which includes its etcd check), as the admin."""
        pki = self.pki
        if not pki.complete():
            return Health(False, f"no PKI in {pki.root}")
        try:
            with self._client() as client:
                response = client.get("/readyz")
        except httpx.HTTPError as exc:
            return Health(False, f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return Health(False, f"/readyz {response.status_code}: {response.text.strip()[-300:]}")
        return Health(True, f"kubernetes {KUBERNETES_VERSION}; kubeconfig {self.kubeconfig}")

    def after_start(self, progress: Progress) -> None:
        """Register the simulated node (idempotent) and wait until kwok reports it Ready."""
        with self._client() as client:
            created = client.post("/api/v1/nodes", json=node_manifest())
            if created.status_code not in (201, 409):
                raise StartupError(f"k8s: creating node {NODE_NAME} failed: {created.status_code} {created.text}")
            deadline = time.monotonic() + self.node_ready_timeout
            while time.monotonic() < deadline:
                node = client.get(f"/api/v1/nodes/{NODE_NAME}").json()
                conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
                if conditions.get("Ready") == "True":
                    progress(f"k8s: node {NODE_NAME} Ready (kwok)")
                    return
                time.sleep(0.5)
        logs = self.settings.state_dir / "logs" / "k8s-kwok.log"
        raise StartupError(f"k8s: node {NODE_NAME} not Ready after {self.node_ready_timeout:.0f} s; read {logs}")

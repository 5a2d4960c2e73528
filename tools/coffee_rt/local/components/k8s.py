"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries are built from the Go module proxy (``coffee_rt.k8s.build``) on first use. There are
no nodes: the API, admission, RBAC and CRD validation are all real, and the controller-manager makes
Deployments produce ReplicaSets and Pods (which stay Pending). ``kubectl --kubeconfig <home>/kubeconfig``
talks to it as an admin with a bearer token.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import httpx

from coffee_rt.k8s import kubeconfig
from coffee_rt.k8s.build import Binaries, ensure_built, version_home
from coffee_rt.k8s.pki import ADMIN_USER, CONTROLLER_MANAGER_USER, SERVICE_CIDR, Pki, ensure_pki
from coffee_rt.k8s.versions import KUBERNETES_VERSION
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class Kubernetes(Component):
    name = "k8s"
    # A cold first start also compiles the binaries; that happens in prepare(), outside this timeout.
    start_timeout = 120.0

    @property
    def pki(self) -> Pki:
        return Pki(self.home / "pki")

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig for kubectl and tests."""
        return self.home / "kubeconfig"

    @property
    def _kcm_kubeconfig(self) -> Path:
        return self.home / "controller-manager.kubeconfig"

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
        kubeconfig.write(self._kcm_kubeconfig, kubeconfig.render(
            self.address(), pki.ca_cert, CONTROLLER_MANAGER_USER,
            client_cert=pki.controller_manager_cert, client_key=pki.controller_manager_key))

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
        controller_manager = [
            # It quits if the API server is not healthy 10 s after its start: launch it once it is.
            sys.executable, "-m", "coffee_rt.k8s.await_ready", self.address(), str(pki.ca_cert), "--",
            str(bins.kube_controller_manager),
            "--kubeconfig", str(self._kcm_kubeconfig),
            "--authentication-kubeconfig", str(self._kcm_kubeconfig),
            "--authorization-kubeconfig", str(self._kcm_kubeconfig),
            # Each controller acts as its own service account, so RBAC applies to them as in a real cluster.
            "--use-service-account-credentials",
            "--service-account-private-key-file", str(pki.sa_key),
            "--root-ca-file", str(pki.ca_cert),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--leader-elect=false",
            "--secure-port", "0",
            "--profiling=false",
            "--v", "1",
        ]
        return [
            self.process("etcd", etcd),
            self.process("apiserver", apiserver),
            self.process("controller-manager", controller_manager),
        ]

    def health(self) -> Health:
        """The API server's /readyz (which includes its etcd check), as the admin."""
        pki = self.pki
        if not pki.complete():
            return Health(False, f"no PKI in {pki.root}")
        try:
            context = ssl.create_default_context(cafile=str(pki.ca_cert))
            response = httpx.get(f"{self.address()}/readyz", verify=context, timeout=2.0,
                                 headers={"Authorization": f"Bearer {pki.admin_token()}"})
        except httpx.HTTPError as exc:
            return Health(False, f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return Health(False, f"/readyz {response.status_code}: {response.text.strip()[-300:]}")
        return Health(True, f"kubernetes {KUBERNETES_VERSION}; kubeconfig {self.kubeconfig}")

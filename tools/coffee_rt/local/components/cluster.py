"""A real one-node Kubernetes cluster: the k8s component's control plane plus containerd + runc,
a kubelet, kube-proxy (iptables), CoreDNS and kube-router's network policy firewall, pods on a
private bridge of this machine.

Everything listens on the node IP (the bridge's first address, a private range no other machine
sees) or on loopback. ``kubectl --kubeconfig <home>/kubeconfig`` is an admin. ``down`` kills every
container, unmounts what the node mounted, removes the bridge, kube-proxy's, the kubelet's and
kube-router's iptables chains and kube-router's ipsets, and puts the two sysctls back. One cluster
per machine: kube-proxy and kube-router own the host's KUBE-* chains.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from coffee_rt.cluster import config, network, runtime
from coffee_rt.cluster.images import PAUSE, Builder
from coffee_rt.errors import PrerequisiteError, StartupError
from coffee_rt.k8s import kube_router, kubeconfig
from coffee_rt.k8s.pki import SERVICE_CIDR, issue
from coffee_rt.local.components.base import Health, Progress
from coffee_rt.local.components.k8s import Kubernetes
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.settings import LocalSettings

NODE_NAME = config.NODE_NAME
# Client certificates of the node's parts: (user, groups). Without the Node authorizer there is no
# narrower built-in role for a kubelet; the cluster is a local test bed on a private bridge.
NODE_CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes", "system:masters")),
    "kube-proxy": ("system:kube-proxy", ()),  # bound to system:node-proxier by default
    "coredns": ("coffee-rt-coredns", ("system:masters",)),
    # Reads pods, namespaces, NetworkPolicies and its node; it starts before any RBAC object could
    # be created for it, so no narrower binding exists when it needs one.
    "kube-router": ("coffee-rt-kube-router", ("system:masters",)),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
}
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The node's storage: a default StorageClass with a pool of pre-made volumes, folders under the
# cluster's home (Kubernetes has no provisioner for a one-node disk that pods of any uid can write).
STORAGE_CLASS = "coffee-rt-local"
VOLUMES = 8
VOLUME_SIZE = "20Gi"
DEBIAN_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ipset", "buildah",
                "mmdebstrap")
# kube-router runs its firewall only: no routing (the bridge does it), no service proxy (kube-proxy
# does it, and kube-router v2.1.0's has a reported flaw: external IPs are not validated).
KUBE_ROUTER_SYNC_METRIC = "kube_router_controller_iptables_sync_time_count"


def control_plane_settings(settings: LocalSettings) -> LocalSettings:
    """The k8s component's settings moved onto this cluster's node IP and ports."""
    node_ip = str(next(ipaddress.ip_network(settings.cluster_pod_cidr).hosts()))
    return settings.model_copy(update={
        "host": node_ip,
        "k8s_apiserver_port": settings.cluster_apiserver_port,
        "etcd_port": settings.cluster_etcd_port,
        "etcd_peer_port": settings.cluster_etcd_peer_port,
    })


class Cluster(Kubernetes):
    name = "cluster"
    start_timeout = 180.0

    def __init__(self, settings: LocalSettings) -> None:
        super().__init__(control_plane_settings(settings))
        self.stack_settings = settings

    @property
    def layout(self) -> config.NodeLayout:
        s = self.stack_settings
        return config.NodeLayout(home=self.home, bridge=s.cluster_bridge, pod_cidr=s.cluster_pod_cidr,
                                 service_cidr=SERVICE_CIDR, kubelet_port=s.kubelet_port, dns_port=s.coredns_port,
                                 dns_ready_port=s.coredns_ready_port, sandbox_image=PAUSE)

    @property
    def node_ip(self) -> str:
        return self.layout.node_ip

    @property
    def kubectl_binary(self) -> Path:
        """The kubectl built with the cluster (its own minor)."""
        return self._binaries["kubectl"]

    def ports(self) -> list[int]:
        s = self.stack_settings
        return [s.kube_proxy_port, s.kube_proxy_metrics_port, s.coredns_ready_port, s.kube_router_metrics_port]

    @property
    def kube_router_binary(self) -> Path:
        return kube_router.binary_path(cache=self.settings.cache_dir)

    def _node_kubeconfig(self, part: str) -> Path:
        return self.home / f"{part}.kubeconfig"

    def _node_cert(self, part: str) -> tuple[Path, Path]:
        return self.pki.root / f"{part}.crt", self.pki.root / f"{part}.key"

    def prepare(self, progress: Progress) -> None:
        missing = [tool for tool in DEBIAN_TOOLS if shutil.which(tool, path=HOST_PATH) is None]
        if missing:
            raise PrerequisiteError(f"cluster: missing {', '.join(missing)}; run tools/bootstrap.sh "
                                    "(Debian's containerd, runc, iptables, ipset, buildah, mmdebstrap)")
        layout = self.layout
        self.home.mkdir(parents=True, exist_ok=True)
        self._host_marker.write_text(layout.bridge)
        network.ensure_bridge(layout.bridge, layout.node_ip, ipaddress.ip_network(layout.pod_cidr).prefixlen,
                              SERVICE_CIDR)
        network.enable_sysctls(self.home / "sysctls-before.json")
        super().prepare(progress)  # binaries, PKI (the node IP in the API server's names), kubeconfigs
        kube_router.ensure_built(progress, cache=self.settings.cache_dir)
        self._ensure_node_certs()
        for part in NODE_CLIENTS:
            if part == "apiserver-kubelet-client":
                continue
            cert, key = self._node_cert(part)
            kubeconfig.write(self._node_kubeconfig(part), kubeconfig.render(
                self.address(), self.pki.ca_cert, NODE_CLIENTS[part][0], client_cert=cert, client_key=key))
        config.write_all(layout, self.pki.ca_cert, self._node_kubeconfig("coredns"))
        for folder in ("kubelet/root", "kubelet/pki", "kubelet/pod-logs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        Builder(self.settings.cache_dir).ensure_pause()

    def _ensure_node_certs(self) -> None:
        pki = self.pki
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise StartupError(f"cluster: unexpected CA key type in {pki.ca_key}")
        for part, (user, groups) in NODE_CLIENTS.items():
            cert_path, key_path = self._node_cert(part)
            if cert_path.exists() and key_path.exists():
                continue
            cert, key = issue(ca_cert, ca_key, user, organizations=groups)
            key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            key_path.chmod(0o600)
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def processes(self) -> list[ManagedProcess]:
        s, layout, bins = self.stack_settings, self.layout, self._binaries
        env = {"PATH": HOST_PATH}
        control = [p for p in super().processes() if not p.name.endswith("-kwok")]
        cert, key = self._node_cert("apiserver-kubelet-client")
        control = [self._api_for_node(p, cert, key) if p.name.endswith("-apiserver") else p for p in control]
        containerd = self.process("containerd", ["containerd", "--config", str(layout.containerd_config)], env=env)
        kubelet = self.process("kubelet", self._after_api([
            str(bins["kubelet"]),
            "--config", str(layout.kubelet_config),
            "--kubeconfig", str(self._node_kubeconfig("kubelet")),
            "--node-ip", layout.node_ip,
            "--hostname-override", NODE_NAME,
            "--root-dir", str(self.home / "kubelet" / "root"),
            "--cert-dir", str(self.home / "kubelet" / "pki"),
            "--v", "1",
        ]), env=env)
        proxy = self.process("proxy", self._after_api([
            str(bins["kube-proxy"]),
            "--kubeconfig", str(self._node_kubeconfig("kube-proxy")),
            "--proxy-mode", "iptables",
            "--hostname-override", NODE_NAME,
            "--cluster-cidr", layout.pod_cidr,
            "--nodeport-addresses", f"{layout.node_ip}/32",
            "--healthz-bind-address", f"127.0.0.1:{s.kube_proxy_port}",
            "--metrics-bind-address", f"127.0.0.1:{s.kube_proxy_metrics_port}",
            # Leave the host's conntrack limits and timeouts as they are (and the sysctls they need).
            "--conntrack-max-per-core", "0",
            "--conntrack-tcp-timeout-established", "0",
            "--conntrack-tcp-timeout-close-wait", "0",
            "--iptables-localhost-nodeports=false",
            "--v", "1",
        ]), env=env)
        coredns = self.process("coredns", self._after_api([str(bins.coredns), "-conf", str(layout.corefile)]),
                               env=env)
        return [containerd, *control, kubelet, proxy, coredns, self._kube_router_process(env)]

    def _kube_router_process(self, env: dict[str, str]) -> ManagedProcess:
        """NetworkPolicies enforced with iptables and ipsets: kube-router's firewall and nothing else.

        It looks its node up once at start, so it waits for the kubelet to register it. Its health
        server would listen on every interface (v2.1.0 has no address for it): off; its metrics,
        on loopback, tell that its first full sync is done.
        """
        s = self.stack_settings
        cert, key = self._node_cert("kube-router")
        argv = self._after_api([
            str(self.kube_router_binary),
            "--kubeconfig", str(self._node_kubeconfig("kube-router")),
            "--hostname-override", NODE_NAME,
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--run-loadbalancer=false", "--enable-cni=false", "--enable-ipv4=true", "--enable-ipv6=false",
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--health-port", "0",
            "--metrics-addr", "127.0.0.1", "--metrics-port", str(s.kube_router_metrics_port),
            "--v", "1",
        ])
        separator = argv.index("--")
        argv[separator:separator] = ["--node", NODE_NAME, str(cert), str(key)]
        return self.process("kube-router", argv, env=env)

    def _api_for_node(self, apiserver: ManagedProcess, cert: Path, key: Path) -> ManagedProcess:
        """The API server with real endpoints for `kubernetes` (the node IP) and a client cert for kubelets."""
        argv = list(apiserver.argv)
        index = argv.index("--endpoint-reconciler-type")
        del argv[index:index + 2]
        argv += ["--kubelet-client-certificate", str(cert), "--kubelet-client-key", str(key),
                 "--kubelet-preferred-address-types", "InternalIP"]
        return dataclasses.replace(apiserver, argv=argv)

    def health(self) -> Health:
        """The API server ready, the node Ready, CoreDNS ready."""
        api = super().health()
        if not api.ok:
            return api
        try:
            with self._client() as client:
                node = client.get(f"/api/v1/nodes/{NODE_NAME}")
            dns = httpx.get(f"http://127.0.0.1:{self.stack_settings.coredns_ready_port}/ready", timeout=2.0)
        except httpx.HTTPError as exc:
            return Health(False, f"{type(exc).__name__}: {exc}")
        if node.status_code != 200:
            return Health(False, f"node {NODE_NAME} not registered ({node.status_code})")
        conditions = {c["type"]: c["status"] for c in node.json().get("status", {}).get("conditions", [])}
        if conditions.get("Ready") != "True":
            return Health(False, f"node {NODE_NAME} not Ready")
        if dns.status_code != 200:
            return Health(False, f"CoreDNS not ready ({dns.status_code})")
        firewall = self._kube_router_health()
        if not firewall.ok:
            return firewall
        return Health(True, f"node {NODE_NAME} Ready at {self.node_ip}; kubeconfig {self.kubeconfig}")

    def _kube_router_health(self) -> Health:
        """kube-router has finished a full sync of the NetworkPolicies into iptables."""
        try:
            metrics = httpx.get(f"http://127.0.0.1:{self.stack_settings.kube_router_metrics_port}/metrics",
                                timeout=2.0)
        except httpx.HTTPError as exc:
            return Health(False, f"kube-router: {type(exc).__name__}: {exc}")
        syncs = [line.split()[-1] for line in metrics.text.splitlines()
                 if line.startswith(KUBE_ROUTER_SYNC_METRIC + " ")]
        if metrics.status_code != 200 or not syncs or float(syncs[0]) < 1:
            return Health(False, "kube-router: no network policy sync yet")
        return Health(True, "kube-router synced")

    def after_start(self, progress: Progress) -> None:
        """The pause image into containerd, the kube-dns Service pointing at CoreDNS, the volume pool."""
        self.import_images([PAUSE], progress)
        self._ensure_dns_service()
        self.ensure_storage(progress)
        progress(f"cluster: node {NODE_NAME} Ready; kubectl --kubeconfig {self.kubeconfig}")

    def import_images(self, references: list[str], progress: Progress) -> None:
        """Copy images from the build cache (coffee_rt.cluster.images) into the node's containerd."""
        socket = self.layout.containerd_socket
        builder = Builder(self.settings.cache_dir)
        stamp_dir = self.home / "imported"
        stamp_dir.mkdir(parents=True, exist_ok=True)
        present = runtime.image_names(socket)
        for reference in references:
            image_id, _ = builder.inspect(reference)
            stamp = stamp_dir / (reference.replace("/", "_").replace(":", "_") + ".id")
            if reference in present and stamp.exists() and stamp.read_text() == image_id:
                continue
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="coffee-rt-image-") as tmp:
                runtime.import_archive(socket, builder.export(reference, Path(tmp) / "image.tar"))
            stamp.write_text(image_id)
            progress(f"cluster: imported {reference} ({time.monotonic() - started:.0f} s)")

    def _ensure_dns_service(self) -> None:
        layout = self.layout
        service = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"clusterIP": layout.dns_service_ip, "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": layout.dns_port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": layout.dns_port}]},
        }
        # CoreDNS runs on the node, not in a pod: the Service has no selector and this slice instead.
        endpoints = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kube-dns-node", "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": "coffee-rt"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [layout.node_ip], "conditions": {"ready": True}, "nodeName": NODE_NAME}],
            "ports": [{"name": "dns", "port": layout.dns_port, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": layout.dns_port, "protocol": "TCP"}],
        }
        with self._client() as client:
            for path, name, body in (("/api/v1/namespaces/kube-system/services", "kube-dns", service),
                                     ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                                      "kube-dns-node", endpoints)):
                # Present from an earlier start (etcd is kept): a second create of the Service would be
                # refused with 422 (its ClusterIP is allocated, to itself) rather than 409.
                if client.get(f"{path}/{name}").status_code == 200:
                    continue
                response = client.post(path, json=body)
                if response.status_code not in (201, 409):
                    raise StartupError(f"cluster: creating {body['kind']} kube-dns failed: "
                                       f"{response.status_code} {response.text[:500]}")

    @property
    def volumes_dir(self) -> Path:
        return self.home / "volumes"

    def ensure_storage(self, progress: Progress) -> None:
        """The default StorageClass and its volumes; a volume whose claim was deleted is wiped and offered again.

        Each volume is a hostPath folder of mode 0777: the kubelet applies no fsGroup to hostPath
        volumes, and the pods run as their images' own non-root users. A claim binds when its pod
        is scheduled (``WaitForFirstConsumer``), like a cloud disk; reclaiming on the next start
        (or ``coffee-rt deploy``) stands in for a provisioner's delete.
        """
        storage_class = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner", "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
        with self._client() as client:
            response = client.post("/apis/storage.k8s.io/v1/storageclasses", json=storage_class)
            if response.status_code not in (201, 409):
                raise StartupError(f"cluster: creating StorageClass {STORAGE_CLASS} failed: "
                                   f"{response.status_code} {response.text[:500]}")
            existing = {pv["metadata"]["name"]: pv for pv in client.get(
                "/api/v1/persistentvolumes", params={"labelSelector": f"coffee-rt/pool={STORAGE_CLASS}"}
            ).raise_for_status().json()["items"]}
            for index in range(VOLUMES):
                name = f"local-{index}"
                folder = self.volumes_dir / name
                pv = existing.get(name)
                if pv is not None and pv.get("status", {}).get("phase") != "Released":
                    continue
                if pv is not None:
                    claim = pv["spec"].get("claimRef", {})
                    client.delete(f"/api/v1/persistentvolumes/{name}").raise_for_status()
                    self._wait_gone(client, f"/api/v1/persistentvolumes/{name}")
                    progress(f"cluster: wiped volume {name} (was {claim.get('namespace')}/{claim.get('name')})")
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                folder.chmod(0o777)
                body = {
                    "apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": name, "labels": {"coffee-rt/pool": STORAGE_CLASS}},
                    "spec": {"capacity": {"storage": VOLUME_SIZE}, "accessModes": ["ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                             "hostPath": {"path": str(folder), "type": "Directory"}},
                }
                response = client.post("/api/v1/persistentvolumes", json=body)
                if response.status_code not in (201, 409):
                    raise StartupError(f"cluster: creating volume {name} failed: "
                                       f"{response.status_code} {response.text[:500]}")

    @staticmethod
    def _wait_gone(client: httpx.Client, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while client.get(path).status_code != 404:
            if time.monotonic() > deadline:
                raise StartupError(f"cluster: {path} still exists after {timeout:.0f} s")
            time.sleep(0.5)

    def stop(self, progress: Progress) -> bool:
        """Every container killed before containerd stops, then the host put back as it was."""
        processes = {p.name.removeprefix(f"{self.name}-"): p for p in self.processes()}
        stopped = processes["kubelet"].stop()  # first, so it restarts nothing
        killed, netns = runtime.kill_all(self.layout.containerd_socket)
        if killed:
            progress(f"cluster: killed {killed} containers")
        for process in reversed(list(processes.values())):
            if process.stop():
                progress(f"cluster: stopped {process.name}")
                stopped = True
        network.delete_netns(netns)
        runtime.unmount_under(self.home)
        self._clean_host(progress)
        shutil.rmtree(self.layout.cni_ipam_dir, ignore_errors=True)  # no pod holds an address now
        return stopped

    @property
    def _host_marker(self) -> Path:
        """Present from the first change to the host until ``down`` has undone them all."""
        return self.home / "host-changed"

    def _clean_host(self, progress: Progress) -> None:
        if not self._host_marker.exists():
            return  # this cluster never ran: the chains, if any, are another cluster's
        proxy = self._binaries["kube-proxy"]
        if proxy.is_file():
            subprocess.run([str(proxy), "--cleanup"], capture_output=True, check=False, env={"PATH": HOST_PATH})
        network.remove_kubelet_chains()
        chains, ipsets = network.remove_kube_router_state()
        if chains or ipsets:
            progress(f"cluster: removed kube-router's {chains} iptables chains and {ipsets} ipsets")
        if network.remove_bridge(self.layout.bridge, SERVICE_CIDR):
            progress(f"cluster: removed bridge {self.layout.bridge}")
        network.restore_sysctls(self.home / "sysctls-before.json")
        self._host_marker.unlink()

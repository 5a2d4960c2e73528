"""The node's configuration files: containerd, the CNI network, the kubelet, CoreDNS.

Pure rendering from a ``NodeLayout``; the cluster component writes them on every start.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
NODE_NAME = "coffee-rt-node"
CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class NodeLayout:
    """Where the node keeps its state and which addresses it uses."""

    home: Path
    bridge: str
    pod_cidr: str  # the bridge's subnet: its first address is the node's IP and the pods' gateway
    service_cidr: str
    kubelet_port: int
    dns_port: int
    dns_ready_port: int
    sandbox_image: str

    @property
    def node_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def dns_service_ip(self) -> str:
        """The kube-dns Service's ClusterIP: the service range's tenth address, as kubeadm picks."""
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def containerd_socket(self) -> Path:
        return self.home / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.home / "containerd" / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.home / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.home / "cni" / "ipam"

    @property
    def kubelet_config(self) -> Path:
        return self.home / "kubelet" / "config.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.home / "kubelet" / "resolv.conf"

    @property
    def corefile(self) -> Path:
        return self.home / "coredns" / "Corefile"


def containerd_toml(layout: NodeLayout) -> str:
    """containerd with its own root, state and socket, so it runs beside any other containerd.

    ``restrict_oom_score_adj``: root without CAP_SYS_RESOURCE (a VM's sandbox) cannot lower a
    process's oom_score_adj, and runc then fails every sandbox ("can't get final child's PID").
    """
    home = layout.home / "containerd"
    return f"""version = 2
root = "{home / 'root'}"
state = "{home / 'state'}"

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{home / 'ttrpc.sock'}"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{layout.sandbox_image}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{layout.cni_conf_dir}"
"""


def cni_conflist(layout: NodeLayout) -> dict[str, Any]:
    """Pods on our bridge, addresses from its subnet; no masquerading: nothing leaves the machine."""
    return {
        "cniVersion": "0.4.0",
        "name": "coffee-rt",
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.pod_cidr, "gateway": layout.node_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: NodeLayout, ca_file: Path) -> dict[str, Any]:
    """The kubelet on the node IP (not loopback: the API server reaches it there for logs and exec).

    cgroup v1 hosts need ``failCgroupV1: false``; without systemd the driver is cgroupfs. Only
    clients with a certificate from our CA get in (the API server's kubelet-client one).
    Image garbage collection is off: the images were imported, no registry can give them back.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(ca_file)}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [layout.dns_service_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(layout.resolv_conf),
        "podLogsDir": str(layout.home / "kubelet" / "pod-logs"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
    }


def resolv_conf() -> str:
    """The pods' upstream resolver list: none. Cluster names come from CoreDNS; nothing is forwarded."""
    return "nameserver 127.0.0.1\n"


def corefile(layout: NodeLayout, kubeconfig: Path) -> str:
    """CoreDNS on the node IP, answering only for the cluster's names (no forward plugin)."""
    return f""".:{layout.dns_port} {{
    bind {layout.node_ip}
    errors
    ready 127.0.0.1:{layout.dns_ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


def write_all(layout: NodeLayout, ca_file: Path, coredns_kubeconfig: Path) -> None:
    files = {
        layout.containerd_config: containerd_toml(layout),
        layout.cni_conf_dir / "10-coffee-rt.conflist": json.dumps(cni_conflist(layout), indent=2),
        layout.kubelet_config: yaml.safe_dump(kubelet_config(layout, ca_file), sort_keys=False),
        layout.resolv_conf: resolv_conf(),
        layout.corefile: corefile(layout, coredns_kubeconfig),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

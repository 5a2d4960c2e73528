"""The node's network on the host: a private bridge, a route for the service range, two sysctls,
and on ``down`` the removal of all of it and of the kubelet's and kube-proxy's iptables chains.

The bridge exists before the kubelet starts because its address is the node IP the API server,
the kubelet and CoreDNS bind to. The service range is routed onto the bridge so that a ClusterIP
never leaves the machine, even for a Service kube-proxy has not programmed yet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from coffee_rt.errors import PrerequisiteError, StartupError

# Pods reach ClusterIPs and each other across the bridge only with these on.
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}
# Chains the kubelet makes on start; `kube-proxy --cleanup` removes kube-proxy's own.
KUBELET_CHAINS = {
    "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"),
    "nat": ("KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"),
    "mangle": ("KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"),
}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ip")
    if binary is None:
        raise PrerequisiteError("the `ip` command (iproute2) is needed for the cluster's bridge")
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise StartupError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def bridge_exists(bridge: str) -> bool:
    return _ip("link", "show", bridge, check=False).returncode == 0


def ensure_bridge(bridge: str, node_ip: str, prefix: int, service_cidr: str) -> None:
    """The bridge up with ``node_ip``, the service range routed to it (idempotent)."""
    if not bridge_exists(bridge):
        _ip("link", "add", bridge, "type", "bridge")
    addresses = json.loads(_ip("-j", "addr", "show", bridge).stdout or "[]")
    present = {a["local"] for entry in addresses for a in entry.get("addr_info", [])}
    if node_ip not in present:
        _ip("addr", "add", f"{node_ip}/{prefix}", "dev", bridge)
    _ip("link", "set", bridge, "up")
    _ip("route", "replace", service_cidr, "dev", bridge, "src", node_ip)


def remove_bridge(bridge: str, service_cidr: str) -> bool:
    if not bridge_exists(bridge):
        return False
    _ip("route", "del", service_cidr, "dev", bridge, check=False)
    _ip("link", "del", bridge, check=False)
    return True


def enable_sysctls(saved: Path) -> None:
    """Turn on what the cluster needs, remembering the values before (for ``restore_sysctls``)."""
    before = json.loads(saved.read_text()) if saved.exists() else {}
    for key, value in SYSCTLS.items():
        path = Path("/proc/sys") / key
        if not path.exists():
            if key.startswith("net/bridge"):
                subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
            if not path.exists():
                raise PrerequisiteError(f"{path} is missing: the kernel needs the br_netfilter module")
        before.setdefault(key, path.read_text().strip())
        path.write_text(value)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(before))


def restore_sysctls(saved: Path) -> None:
    if not saved.exists():
        return
    for key, value in json.loads(saved.read_text()).items():
        try:
            (Path("/proc/sys") / key).write_text(value)
        except OSError:
            pass
    saved.unlink()


def _iptables(table: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", "-t", table, *args], capture_output=True, text=True, check=False)


def remove_kubelet_chains() -> None:
    """Unhook and delete the chains the kubelet made (kube-proxy's go with its own --cleanup)."""
    rules = {table: _iptables(table, "-S").stdout.splitlines() for table in KUBELET_CHAINS}
    for table, chains in KUBELET_CHAINS.items():
        for rule in rules[table]:
            if rule.startswith("-A ") and any(f"-j {chain}" in rule for chain in chains):
                _iptables(table, "-D", *rule.split()[1:])
        for chain in chains:
            _iptables(table, "-F", chain)
            _iptables(table, "-X", chain)


def delete_netns(names: Sequence[str]) -> None:
    """Network namespaces CRI made for sandboxes (their veths go with them)."""
    for name in names:
        _ip("netns", "delete", name, check=False)

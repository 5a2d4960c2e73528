"""The node's network on the host: a private bridge, a route for the service range, two sysctls,
and on ``down`` the removal of all of it, of the kubelet's and kube-proxy's iptables chains and of
kube-router's network policy chains and ipsets.

The bridge exists before the kubelet starts because its address is the node IP the API server,
the kubelet and CoreDNS bind to. The service range is routed onto the bridge so that a ClusterIP
never leaves the machine, even for a Service kube-proxy has not programmed yet.
"""

from __future__ import annotations

import json
import shlex
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
# kube-router's network policy controller: its filter chains (hooked into INPUT, FORWARD, OUTPUT)
# and its ipsets of pod addresses. It has no clean-up of its own that leaves IPVS and routes alone.
KUBE_ROUTER_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
KUBE_ROUTER_IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-", "inet6:KUBE-SRC-", "inet6:KUBE-DST-")


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


def kube_router_plan(rules: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """From ``iptables -S`` of the filter table: the hooks to delete (``-D`` arguments) and kube-router's chains."""
    chains = [line.split()[1] for line in rules
              if line.startswith("-N ") and line.split()[1].startswith(KUBE_ROUTER_CHAIN_PREFIXES)]
    hooks = []
    for rule in rules:
        parts = shlex.split(rule)  # the hooks carry quoted comments
        if (parts[:1] == ["-A"] and not parts[1].startswith(KUBE_ROUTER_CHAIN_PREFIXES)
                and "-j" in parts and parts[parts.index("-j") + 1] in chains):
            hooks.append(parts[1:])
    return hooks, chains


def remove_kube_router_state() -> tuple[int, int]:
    """Delete kube-router's filter chains (after unhooking them) and then its ipsets: (chains, ipsets)."""
    hooks, chains = kube_router_plan(_iptables("filter", "-S").stdout.splitlines())
    for hook in hooks:
        _iptables("filter", "-D", *hook)
    for chain in chains:  # flushed first: the chains jump to each other
        _iptables("filter", "-F", chain)
    for chain in chains:
        _iptables("filter", "-X", chain)
    ipset = shutil.which("ipset") or shutil.which("ipset", path="/usr/sbin:/sbin")
    if ipset is None:
        return len(chains), 0
    names = subprocess.run([ipset, "list", "-n"], capture_output=True, text=True, check=False).stdout.split()
    ours = [name for name in names if name.startswith(KUBE_ROUTER_IPSET_PREFIXES)]
    for name in ours:
        subprocess.run([ipset, "destroy", name], capture_output=True, check=False)
    return len(chains), len(ours)


def delete_netns(names: Sequence[str]) -> None:
    """Network namespaces CRI made for sandboxes (their veths go with them)."""
    for name in names:
        _ip("netns", "delete", name, check=False)
